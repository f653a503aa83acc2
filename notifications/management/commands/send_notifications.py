from django.core.management.base import BaseCommand

from notifications.services import notifications_sweep


class Command(BaseCommand):
    help = "Hand every pending, due notification to Celery now (eagerly sent in the embedded mode)."

    def handle(self, *args, **options):
        count = notifications_sweep(older_than_seconds=0)
        self.stdout.write(f"{count} notification(s) queued.")
