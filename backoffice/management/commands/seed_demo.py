"""Demo data for the embedded default (scripts/dev.sh): what a newcomer needs to see Solaris work.

The demo user is on a small plan and has already spent 76 % of it in a few recorded calls, so a
handful of calls through the demo upstream (scripts/demo-litellm.yaml) crosses the alert threshold
and, a few more later, the blocking one. Repeatable: existing demo rows are kept, only passwords are
reset and a fresh API key is printed.
"""

from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from accounts.services import api_key_create
from credits.models import CreditPackage, LedgerEntry, ModelPrice, Plan
from credits.services import hold_create, hold_settle, model_price_set, plan_create, user_create
from proxy.models import CallRecord
from proxy.services import record_write

DEMO_ADMIN = ("admin@solaris.local", "solaris-admin")
DEMO_USER = ("demo@solaris.local", "solaris-demo")
DEMO_PLAN = "demo"
DEMO_ALLOWANCE = 10_000
# (model, input weight, output weight): the models scripts/demo-litellm.yaml serves.
DEMO_PRICES = (("demo-mini", "1", "4"), ("demo-pro", "3", "12"))
# Past calls (model, prompt tokens, completion tokens): 7,600 of the 10,000 credits, 76 %.
DEMO_HISTORY = (
    ("demo-pro", 200, 300),
    ("demo-mini", 150, 400),
    ("demo-mini", 90, 240),
    ("demo-mini", 60, 135),
)


class Command(BaseCommand):
    help = "Create demo data for the embedded default: a plan, prices, an admin and a user."

    @transaction.atomic
    def handle(self, *args, **options):
        plan = Plan.objects.filter(slug=DEMO_PLAN).first() or plan_create(
            slug=DEMO_PLAN,
            name="Demo",
            monthly_allowance=DEMO_ALLOWANCE,
            requests_per_minute=30,
            default_max_tokens=512,
        )
        for model, input_weight, output_weight in DEMO_PRICES:
            model_price_set(
                model=model,
                input_weight=Decimal(input_weight),
                output_weight=Decimal(output_weight),
            )
        for name, credits, price_cents in (
            ("Pacote 20 mil", 20_000, 990),
            ("Pacote 500 mil", 500_000, 4_990),
        ):
            CreditPackage.objects.get_or_create(
                name=name, defaults={"credits": credits, "price_cents": price_cents}
            )
        admin = self._ensure(*DEMO_ADMIN, name="Admin Demo", superuser=True)
        user = self._ensure(*DEMO_USER, name="Usuária Demo", superuser=False)
        if not LedgerEntry.objects.filter(account_id=user.pk, kind=LedgerEntry.Kind.USAGE).exists():
            self._history(user)
        _key, raw = api_key_create(user=user, name="demo")
        site = settings.SOLARIS_PUBLIC_URL
        self.stdout.write(f"Admin:  {admin.email} / {DEMO_ADMIN[1]}  → {site}/admin/")
        self.stdout.write(f"User:   {user.email} / {DEMO_USER[1]}  → {site}/conta/ ({plan.name})")
        self.stdout.write(f"Demo model: {DEMO_PRICES[0][0]}")
        self.stdout.write(f"User API key (shown once): {raw}")

    def _ensure(self, email: str, password: str, *, name: str, superuser: bool) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = user_create(
                email=email,
                name=name,
                password=password,
                is_staff=superuser,
                is_superuser=superuser,
                plan_slug=None if superuser else DEMO_PLAN,
            )
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        return user

    def _history(self, user: User) -> None:
        """Book the past calls as the proxy books them: a hold, its settlement, the call record."""
        for number, (model, prompt, completion) in enumerate(DEMO_HISTORY, start=1):
            request_id = f"demo-history-{user.pk}-{number}"
            admission = hold_create(
                user=user,
                request_id=request_id,
                price=ModelPrice.objects.get(model=model),
                prompt_tokens=prompt,
                max_tokens=completion,
            )
            entry = hold_settle(
                request_id=request_id, prompt_tokens=prompt, completion_tokens=completion
            )
            record_write(
                request_id=request_id,
                user=user,
                model=model,
                stream=True,
                prompt_tokens=prompt,
                completion_tokens=completion,
                credits=-entry.amount if entry else 0,
                held=admission.hold.amount,
                status_code=200,
                end_reason=CallRecord.EndReason.COMPLETED,
                duration_ms=1200 + 300 * number,
            )
