from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import api_key_create


class Command(BaseCommand):
    help = "Create a personal API key for a user; the key is the last line of output."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--name", default="cli")

    def handle(self, *args, email, name, **options):
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"No user with e-mail {email}")
        key, raw = api_key_create(user=user, name=name)
        self.stdout.write(f"Key {key.prefix}… created for {user.email}; it is shown only once:")
        self.stdout.write(raw)
