from celery import shared_task

from monitoring import services


@shared_task
def check_ledger() -> int:
    """Beat runs it every SOLARIS_LEDGER_CHECK_SECONDS; returns the number of violations."""
    return services.ledger_check_run().violations
