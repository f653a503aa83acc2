from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from credits.services import plan_create, plan_default_set


def models(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


class Command(BaseCommand):
    help = "Create a plan: monthly allowance, models, per-minute limit; --default makes it the default."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--allowance", type=int, default=0, help="credits granted each cycle")
        parser.add_argument(
            "--models", type=models, default=None, help="comma-separated; omit for every model"
        )
        parser.add_argument("--rpm", type=int, default=60, help="calls a minute; 0: no limit")
        parser.add_argument(
            "--max-tokens", type=int, default=4096, help="output limit when a call sets none"
        )
        parser.add_argument("--default", action="store_true", help="new users get this plan")
        parser.add_argument("--inactive", action="store_true")

    def handle(
        self, *args, slug, name, allowance, models, rpm, max_tokens, default, inactive, **options
    ):
        try:
            with transaction.atomic():
                plan = plan_create(
                    slug=slug,
                    name=name,
                    monthly_allowance=allowance,
                    all_models=models is None,
                    allowed_models=models or [],
                    requests_per_minute=rpm,
                    default_max_tokens=max_tokens,
                    active=not inactive,
                )
                if default:
                    plan = plan_default_set(plan=plan)
        except ValidationError as exc:
            raise CommandError(
                "; ".join(
                    f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items()
                )
            ) from None
        allowed = "every priced model" if plan.all_models else ", ".join(plan.allowed_models)
        self.stdout.write(
            f"Created plan {plan.slug} ({plan.name}): {plan.monthly_allowance} credits a cycle, "
            f"{allowed}, {plan.requests_per_minute or 'no limit of'} calls a minute"
            + (", the default plan" if plan.is_default else "")
        )
