from django.core.management.base import BaseCommand, CommandError

from credits.selectors import ledger_violations


class Command(BaseCommand):
    help = "Check that every account's cached numbers agree with its ledger, grants and holds."

    def handle(self, *args, **options):
        violations = ledger_violations()
        for violation in violations:
            self.stderr.write(
                f"account {violation.account_id} <{violation.email}>: {violation.problem}"
            )
        if violations:
            raise CommandError(f"{len(violations)} ledger violation(s)")
        self.stdout.write("ledger OK")
