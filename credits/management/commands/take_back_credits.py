import uuid

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from credits.selectors import account_summary
from credits.services import credits_adjust


class Command(BaseCommand):
    help = (
        "Take credits back from a user (a correction, booked as an adjustment entry); "
        "never more than they have available."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("amount", type=int, help="credits to take back (a positive number)")
        parser.add_argument("--reason", required=True, help="why: kept on the ledger entry")
        parser.add_argument(
            "--idempotency-key", default=None, help="repeat a correction safely (default: new key)"
        )

    def handle(self, *args, email, amount, reason, idempotency_key, **options):
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"No user with e-mail {email}")
        if amount <= 0:
            raise CommandError("The amount to take back must be a positive number of credits.")
        try:
            entry = credits_adjust(
                user=user,
                amount=-amount,
                idempotency_key=idempotency_key or f"cli:{uuid.uuid4().hex}",
                reason=reason,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        summary = account_summary(user_id=user.pk)
        self.stdout.write(
            f"Took back {-entry.amount} credits from {user.email}; "
            f"available now {summary.available}"
        )
