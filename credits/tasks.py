import logging

from celery import shared_task

from credits import services
from kernel.shared_counters import HOLDS_REAPED, shared_counter_add

logger = logging.getLogger(__name__)


@shared_task
def renew_cycles() -> int:
    return services.cycles_renew()


@shared_task
def expire_grants() -> int:
    return services.grants_expire()


@shared_task
def reap_holds() -> int:
    released = services.holds_reap()
    if released:
        # Each is a call whose settlement never came: charged nothing (solaris_holds_reaped_total).
        logger.warning("holds released by the reaper", extra={"holds": released})
        shared_counter_add(name=HOLDS_REAPED, amount=released)
    return released
