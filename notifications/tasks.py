from celery import shared_task

from notifications import services


@shared_task(bind=True, acks_late=True, max_retries=None)
def deliver_notification(self, notification_id: int) -> bool:
    """Send one notification; retry with exponential backoff until its attempts run out."""
    try:
        return services.notification_deliver(notification_id=notification_id)
    except services.DeliveryFailed as failure:
        # Eager (embedded) delivery runs inside the request: never retry there, the sweep will.
        if self.request.is_eager or failure.retry_in is None:
            return False
        raise self.retry(countdown=failure.retry_in, exc=failure) from failure


@shared_task
def sweep_notifications() -> int:
    return services.notifications_sweep()
