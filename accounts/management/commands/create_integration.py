from django.core.management.base import BaseCommand

from accounts.services import integration_create


class Command(BaseCommand):
    help = "Create an integration key (for LibreChat); the key is the last line of output."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--no-auto-provision",
            dest="auto_provision",
            action="store_false",
            help="refuse unknown users instead of creating them on the default plan",
        )

    def handle(self, *args, name, auto_provision, **options):
        integration, raw = integration_create(name=name, auto_provision=auto_provision)
        provision = "creates unknown users" if auto_provision else "refuses unknown users"
        self.stdout.write(f"Integration {integration.name} ({provision}); key shown only once:")
        self.stdout.write(raw)
