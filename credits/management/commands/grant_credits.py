import uuid
from datetime import datetime, time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import User
from credits.selectors import account_summary
from credits.services import credits_grant


def parse_expiry(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--expires must be a date like 2026-12-31, not {value!r}") from None
    if len(value) == 10:  # a bare date: the credits last until the end of that day
        moment = datetime.combine(moment.date(), time.max)
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


class Command(BaseCommand):
    help = "Grant credits to a user (a manual top-up)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("amount", type=int)
        parser.add_argument("--reason", default="")
        parser.add_argument("--expires", default=None, help="date (YYYY-MM-DD) or ISO date-time")
        parser.add_argument(
            "--idempotency-key", default=None, help="repeat a grant safely (default: a new key)"
        )

    def handle(self, *args, email, amount, reason, expires, idempotency_key, **options):
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"No user with e-mail {email}")
        try:
            grant = credits_grant(
                user=user,
                amount=amount,
                idempotency_key=idempotency_key or f"cli:{uuid.uuid4().hex}",
                expires_at=parse_expiry(expires) if expires else None,
                reason=reason,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        summary = account_summary(user_id=user.pk)
        self.stdout.write(
            f"Granted {grant.amount} credits to {user.email}; available now {summary.available}"
        )
