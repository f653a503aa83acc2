"""Every test here plays a hostile caller, and ends by checking that nothing it sent left the
books wrong: check_ledger passes and no hold is left open."""

import logging
from io import StringIO

import pytest
from django.core.management import call_command

from credits.models import Hold
from tests.proxy.conftest import (  # noqa: F401  (fixtures, shared with the proxy tests)
    _fresh_cache,
    fault_upstream,
    faulty,
    integration_key,
    litellm_received,
    litellm_received_path,
    litellm_upstream,
    live_server_solaris,
    member,
    member_key,
    plan_live,
    solaris,
    via_litellm,
)


@pytest.fixture(autouse=True)
def _books_stay_right(transactional_db, caplog):
    """No error logged (a 500 logs one, from the live server's thread too), check_ledger clean,
    no hold left open. Set up after the database and torn down before it is flushed, after the
    live server's settlements (the `solaris` fixture waits for them)."""
    yield
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == []
    out = StringIO()
    call_command("check_ledger", stdout=out)  # raises CommandError on any violation
    assert "ledger OK" in out.getvalue()
    assert not Hold.objects.filter(status=Hold.Status.OPEN).exists()
