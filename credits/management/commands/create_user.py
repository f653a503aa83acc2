from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
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
            raise CommandError("; ".join(exc.messages)) from None
        plan = getattr(getattr(user, "subscription", None), "plan", None)
        self.stdout.write(f"Created {user.email} on plan {plan.slug if plan else '(none)'}")
