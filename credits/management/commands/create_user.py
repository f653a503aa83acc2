from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from credits.selectors import default_plan
from credits.services import user_create


class Command(BaseCommand):
    help = "Create a user on a plan (the default plan unless --plan is given)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--name", default="")
        parser.add_argument("--plan", dest="plan_slug", default=None, help="plan slug")
        parser.add_argument("--password", default=None, help="omit for a user without password")
        parser.add_argument("--language", choices=User.Language.values, default=User.Language.PT_BR)
        parser.add_argument("--staff", action="store_true")
        parser.add_argument("--superuser", action="store_true")

    def handle(
        self, *args, email, name, plan_slug, password, language, staff, superuser, **options
    ):
        default = default_plan()
        try:
            user = user_create(
                email=email,
                name=name,
                password=password,
                language=language,
                plan_slug=plan_slug,
                is_staff=staff or superuser,
                is_superuser=superuser,
            )
        except ValidationError as exc:
            if getattr(exc, "code", None) == "plan":
                instead = f"the default plan ({default.slug})" if default else "no plan"
                raise CommandError(
                    f"There is no plan {plan_slug!r}. Create it first with "
                    f"`manage.py create_plan {plan_slug} --name NAME`, or leave --plan out "
                    f"to get {instead}."
                ) from None
            raise CommandError("; ".join(exc.messages)) from None
        plan = getattr(getattr(user, "subscription", None), "plan", None)
        if plan is None:
            self.stdout.write(
                f"Created {user.email} on no plan: no active plan is the default, so every "
                f"chat call is refused. Fix: `manage.py create_plan SLUG --name NAME --default`, "
                f"then `manage.py set_plan {user.email} SLUG`."
            )
            return
        which = "the default plan" if plan.is_default else "not the default plan"
        self.stdout.write(f"Created {user.email} on plan {plan.slug} ({plan.name}, {which})")
