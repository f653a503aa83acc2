from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from credits.models import Plan
from credits.services import subscription_change_plan


class Command(BaseCommand):
    help = "Move a user to another plan now: the old plan's credits expire and a new cycle starts."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("plan_slug", metavar="slug")

    def handle(self, *args, email, plan_slug, **options):
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"No user with e-mail {email}")
        plan = Plan.objects.filter(slug=plan_slug).first()
        if plan is None:
            raise CommandError(
                f"There is no plan {plan_slug!r}: create it with "
                f"`manage.py create_plan {plan_slug} --name NAME`."
            )
        if not plan.active:
            raise CommandError(f"Plan {plan.slug} is inactive: no one can be moved to it.")
        subscription = subscription_change_plan(user=user, plan=plan)
        self.stdout.write(
            f"{user.email} is on plan {plan.slug} ({plan.name}) from now; the cycle renews "
            f"{subscription.cycle_end:%Y-%m-%d %H:%M %Z}"
        )
