import pytest

from credits import services as credits
from solaris.celery import app as celery_app
from tests.factories import ModelPriceFactory


@pytest.fixture(autouse=True)
def eager_celery():
    """Unit tests deliver in-process, as the embedded default does; the worker tests opt out."""
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = saved


@pytest.fixture
def eco(db):
    """One credit per token either way, so a call's cost is easy to read."""
    return ModelPriceFactory(model="eco", input_weight="1", output_weight="1")


@pytest.fixture
def spend(eco, django_capture_on_commit_callbacks):
    """Make one settled call costing exactly `amount` credits; deliveries run as on commit."""
    calls = iter(range(1, 1_000_000))

    def spend(user, amount: int) -> None:
        request_id = f"req-{user.pk}-{next(calls)}"
        with django_capture_on_commit_callbacks(execute=True):
            credits.hold_create(
                user=user, request_id=request_id, price=eco, prompt_tokens=0, max_tokens=amount
            )
            credits.hold_settle(request_id=request_id, prompt_tokens=0, completion_tokens=amount)

    return spend


def celery_reconnect() -> None:
    """Forget pooled broker connections, so the next publish goes to the current broker_url."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
