from celery import shared_task

from credits import services


@shared_task
def renew_cycles() -> int:
    return services.cycles_renew()


@shared_task
def expire_grants() -> int:
    return services.grants_expire()


@shared_task
def reap_holds() -> int:
    return services.holds_reap()
