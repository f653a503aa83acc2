from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.services import integration_create
from credits.services import new_member_plan


class Command(BaseCommand):
    help = (
        "Create an integration key (for LibreChat) and its provisioning policy; the key is the "
        "last line of output."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--no-auto-provision",
            dest="auto_provision",
            action="store_false",
            help="refuse unknown users instead of creating them",
        )
        parser.add_argument(
            "--domains",
            default="",
            help="comma-separated e-mail domains whose unknown users are created (default: any)",
        )
        parser.add_argument(
            "--plan",
            dest="plan_slug",
            default="",
            help="slug of the plan new users get (default: the default plan)",
        )
        parser.add_argument(
            "--no-notices",
            dest="notices",
            action="store_false",
            help="answer refusals with HTTP errors instead of a chat answer",
        )

    def handle(self, *args, name, auto_provision, domains, plan_slug, notices, **options):
        try:
            # Checked here: accounts, which stores the slug, does not know plans.
            plan = new_member_plan(plan_slug=plan_slug or None)
            integration, raw = integration_create(
                name=name,
                auto_provision=auto_provision,
                provision_domains=domains.split(","),
                provision_plan=plan_slug,
                notices_in_band=notices,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        if not auto_provision:
            policy = "refuses unknown users"
        else:
            where = ", ".join(integration.provision_domains) or "any domain"
            policy = f"creates unknown users of {where} on plan {plan.slug if plan else '(none)'}"
        notices_text = "refusals as chat answers" if notices else "refusals as HTTP errors"
        self.stdout.write(f"Integration {integration.name} ({policy}; {notices_text}).")
        self.stdout.write("Key, shown only once:")
        self.stdout.write(raw)
