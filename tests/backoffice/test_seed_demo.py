"""The demo data dev.sh seeds: repeatable, consistent books, and an alert a few calls away."""

from io import StringIO

from django.core.management import call_command

from accounts.models import User
from accounts.selectors import key_find
from credits.models import Account, ModelPrice
from credits.selectors import account_summary, ledger_violations
from credits.services import hold_create, hold_settle
from proxy.models import CallRecord


def run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip().splitlines()


def test_seed_demo_is_repeatable_and_prints_credentials(db):
    first = run("seed_demo")
    second = run("seed_demo")
    assert first[0].startswith("Admin:  admin@solaris.local / ")
    assert "Demo model: demo-mini" in second
    assert key_find(raw_key=second[-1].split()[-1]).user.email == "demo@solaris.local"
    assert User.objects.count() == 2
    assert ModelPrice.objects.filter(active=True).count() == 2
    demo = User.objects.get(email="demo@solaris.local")
    # The history is booked once, as the proxy books calls: holds settled, calls recorded.
    assert CallRecord.objects.filter(user=demo).count() == 4
    assert ledger_violations() == []


def test_demo_user_starts_normal_and_a_handful_of_calls_cross_the_alert(db):
    run("seed_demo")
    demo = User.objects.get(email="demo@solaris.local")
    summary = account_summary(user_id=demo.pk)
    assert (summary.state, summary.used_percent, summary.available) == (
        Account.State.NORMAL,
        76,
        2_400,
    )
    price = ModelPrice.objects.get(model="demo-mini")
    states = []
    # A whole answer of the demo upstream: its mock usage is 10 prompt and 20 completion tokens.
    for number in range(1, 7):
        request_id = f"test-call-{number}"
        hold_create(user=demo, request_id=request_id, price=price, prompt_tokens=40, max_tokens=512)
        hold_settle(request_id=request_id, prompt_tokens=10, completion_tokens=20)
        states.append(account_summary(user_id=demo.pk).state)
    assert states.index(Account.State.ALERT) == 4  # the fifth call crosses 80 %
    assert ledger_violations() == []
