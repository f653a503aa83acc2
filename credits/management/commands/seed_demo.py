from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from accounts.services import api_key_create
from credits.models import CreditPackage, Plan
from credits.services import model_price_set, plan_create, plan_default_set, user_create

DEMO_ADMIN = ("admin@solaris.local", "solaris-admin")
DEMO_USER = ("demo@solaris.local", "solaris-demo")


class Command(BaseCommand):
    help = "Create demo data for the embedded default: a plan, prices, an admin and a user."

    @transaction.atomic
    def handle(self, *args, **options):
        plan = Plan.objects.filter(slug="basico").first() or plan_create(
            slug="basico", name="Básico", monthly_allowance=100_000
        )
        plan_default_set(plan=plan)
        for model, input_weight, output_weight in (
            ("gpt-4o-mini", "0.15", "0.6"),
            ("gpt-4o", "2.5", "10"),
        ):
            model_price_set(
                model=model,
                input_weight=Decimal(input_weight),
                output_weight=Decimal(output_weight),
            )
        CreditPackage.objects.get_or_create(
            name="Pacote 500 mil", defaults={"credits": 500_000, "price_cents": 4_990}
        )
        admin = self._ensure(*DEMO_ADMIN, name="Admin Demo", superuser=True)
        user = self._ensure(*DEMO_USER, name="Usuária Demo", superuser=False)
        _key, raw = api_key_create(user=user, name="demo")
        self.stdout.write(
            f"Admin:  {admin.email} / {DEMO_ADMIN[1]}  → http://127.0.0.1:8000/admin/"
        )
        self.stdout.write(f"User:   {user.email} / {DEMO_USER[1]}")
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
            )
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        return user
