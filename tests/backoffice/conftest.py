import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from accounts.services import api_key_create
from backoffice.roles import FINANCE, SUPPORT, roles_sync
from credits.services import hold_create, hold_settle
from proxy.models import CallRecord

PASSWORD = "senha-forte-123"


def staff(email: str, *, group: str | None = None, superuser: bool = False) -> User:
    user = User.objects.create_user(
        email, PASSWORD, is_staff=True, is_superuser=superuser, name=email.split("@")[0]
    )
    if group:
        roles_sync()  # transactional tests flush the groups the migration made
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def admin_user(db):
    return staff("chefe@solaris.test", superuser=True)


@pytest.fixture
def finance_user(db):
    return staff("financeiro@solaris.test", group=FINANCE)


@pytest.fixture
def support_user(db):
    return staff("suporte@solaris.test", group=SUPPORT)


def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(client, admin_user):
    return logged_in(client, admin_user)


@pytest.fixture
def finance_client(client, finance_user):
    return logged_in(client, finance_user)


@pytest.fixture
def support_client(client, support_user):
    return logged_in(client, support_user)


@pytest.fixture
def staff_key(admin_user):
    return api_key_create(user=admin_user, name="automation")[1]


def spend(user, price, *, request_id: str, prompt: int = 100, completion: int = 50) -> int:
    """A real settled call: hold, settle, and its call record. Returns the credits charged."""
    hold_create(
        user=user,
        request_id=request_id,
        price=price,
        prompt_tokens=prompt,
        max_tokens=max(completion, 1),  # a call always has room for an answer
    )
    entry = hold_settle(request_id=request_id, prompt_tokens=prompt, completion_tokens=completion)
    CallRecord.objects.create(
        request_id=request_id,
        user=user,
        model=price.model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        credits=-entry.amount,
        status_code=200,
        end_reason=CallRecord.EndReason.COMPLETED,
    )
    return -entry.amount


def count_queries(callable_) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        result = callable_()
    return len(queries), result
