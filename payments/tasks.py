from celery import shared_task

from payments import services

WEBHOOK_RETRY_SECONDS = 30


@shared_task(bind=True, acks_late=True, max_retries=6)
def process_webhook(self, delivery_id: int) -> str:
    """Read the notified payment back and apply it; retry with backoff while the provider is down."""
    try:
        return services.webhook_process(delivery_id=delivery_id).outcome
    except services.PaymentUnavailable as exc:
        # Eager (embedded) runs inside the webhook's request: reconciliation reads it again.
        if self.request.is_eager:
            return "deferred"
        raise self.retry(
            countdown=WEBHOOK_RETRY_SECONDS * 2**self.request.retries, exc=exc
        ) from exc


@shared_task
def reconcile_payments() -> int:
    return services.payments_reconcile().read
