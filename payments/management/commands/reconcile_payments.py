from django.core.management.base import BaseCommand

from payments.services import payments_reconcile


class Command(BaseCommand):
    help = (
        "Read pending PIX charges and unbooked refunds back from Mercado Pago and act on them "
        "(what beat runs every minute)."
    )

    def handle(self, *args, **options):
        result = payments_reconcile()
        self.stdout.write(
            f"read {result.read}, expired {result.expired}, "
            f"refunds sent again {result.refunds_sent}, provider failures {result.failed}"
        )
