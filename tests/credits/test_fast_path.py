"""The one-round-trip admission, settlement and release on PostgreSQL (docs/credits.md, "The fast
path"): it books exactly what the ORM services book, declines every case it does not own (which the
ORM then handles), and stays exact under concurrency."""

import random
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from credits.models import Account, Grant, Hold, LedgerEntry
from credits.selectors import ledger_violations
from credits.services import (
    InsufficientCredits,
    credits_grant,
    hold_create,
    hold_release,
    hold_settle,
    hold_settle_summarised,
    holds_pg,
)
from notifications.models import Notification
from tests.credits.test_postgres import race
from tests.factories import ModelPriceFactory, PlanFactory, UserFactory

pytestmark = pytest.mark.postgres


@pytest.fixture
def spy(monkeypatch):
    """Which fast functions ran and whether they took the call (they still run for real)."""
    taken: dict[str, list[bool]] = {"open": [], "settle": [], "release": []}
    for name, attribute in (
        ("open", "hold_open_fast"),
        ("settle", "hold_settle_fast"),
        ("release", "hold_release_fast"),
    ):
        real = getattr(holds_pg, attribute)

        def wrapper(*args, _real=real, _name=name, **kwargs):
            result = _real(*args, **kwargs)
            taken[_name].append(bool(result))
            return result

        monkeypatch.setattr(holds_pg, attribute, wrapper)
    return taken


# --- the same random history, through the fast path and through the ORM only ---


def _history(seed: int, steps: int, longest: int) -> list[tuple]:
    rng = random.Random(seed)
    ops: list[tuple] = []
    requests = 0
    for _step in range(steps):
        roll = rng.random()
        if roll < 0.06:
            hours = rng.choice([None, None, 2, 10, 40])
            ops.append(("grant", rng.randint(50, 600), hours))
        elif roll < 0.5:
            if requests and rng.random() < 0.1:
                ops.append(("admit", rng.randrange(requests), 0, 0, 1, False))  # duplicate id
                continue
            prompt, max_tokens = rng.randint(0, 60), rng.randint(1, longest)
            ops.append(
                ("admit", requests, prompt, max_tokens, rng.choice([1, 1, 2]), rng.random() < 0.5)
            )
            requests += 1
        elif roll < 0.82 and requests:
            target = rng.randrange(requests + 1)  # sometimes one never admitted
            completion = rng.choice([0, rng.randint(0, 120), rng.randint(0, 400)])
            ops.append(("settle", target, rng.randint(0, 60), completion))
        elif roll < 0.9 and requests:
            ops.append(("release", rng.randrange(requests)))
        else:
            ops.append(("wait", rng.choice([1, 3, 12, 30])))
    return ops


def _summary(summary):
    if summary is None:
        return None
    return (
        summary.available,
        summary.balance,
        summary.held,
        summary.debt,
        summary.granted,
        summary.used,
        summary.used_percent,
        summary.state,
    )


def _replay(user, price, ops: list[tuple], tag: str, start) -> list[tuple]:
    """Run the history for `user`; request ids and keys carry `tag` so the two runs never meet."""
    now = start
    results: list[tuple] = []
    for number, op in enumerate(ops):
        kind = op[0]
        try:
            if kind == "grant":
                _kind, amount, hours = op
                expires = now + timedelta(hours=hours) if hours else None
                grant = credits_grant(
                    user=user,
                    amount=amount,
                    idempotency_key=f"{tag}g{number}",
                    expires_at=expires,
                    now=now,
                )
                results.append(("granted", grant.remaining))
            elif kind == "admit":
                _kind, request, prompt, max_tokens, n, with_summary = op
                admission = hold_create(
                    user=user,
                    request_id=f"{tag}r{request}",
                    price=price,
                    prompt_tokens=prompt,
                    max_tokens=max_tokens or 1,
                    n=n,
                    now=now,
                    with_summary=with_summary,
                )
                results.append(
                    (
                        "admitted",
                        admission.hold.amount,
                        admission.max_tokens,
                        admission.clamped,
                        admission.hold.status,
                        _summary(admission.summary),
                    )
                )
            elif kind == "settle":
                _kind, request, prompt, completion = op
                settlement = hold_settle_summarised(
                    request_id=f"{tag}r{request}",
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    now=now,
                )
                entry = settlement.entry
                booked = None if entry is None else (entry.amount, entry.balance_after)
                results.append(("settled", booked, _summary(settlement.summary)))
            elif kind == "release":
                hold_release(request_id=f"{tag}r{op[1]}", now=now)
                results.append(("released",))
            else:
                now += timedelta(hours=op[1])
                results.append(("waited",))
        except (InsufficientCredits, ValidationError, Hold.DoesNotExist) as error:
            results.append(("refused", type(error).__name__))
    return results


def _rows(user, tag: str) -> dict:
    account = Account.objects.get(pk=user.pk)
    grants = list(Grant.objects.filter(account=account).order_by("id"))
    position = {grant.pk: index for index, grant in enumerate(grants)}

    def key(text: str) -> str:
        if text.startswith("expiry:"):
            _expiry, grant_id, remainder = text.split(":")
            return f"expiry:#{position[int(grant_id)]}:{remainder}"
        return text.replace(tag, "")

    entries = LedgerEntry.objects.filter(account=account).select_related("hold").order_by("id")
    holds = Hold.objects.filter(account=account).order_by("id")
    notices = Notification.objects.filter(account=account).order_by("id")
    return {
        "account": (account.balance, account.held, account.debt, account.notified_state),
        "grants": [(g.source, g.amount, g.remaining, g.expires_at, g.created_at) for g in grants],
        "holds": [
            (
                h.request_id.replace(tag, ""),
                h.model,
                h.amount,
                h.input_weight,
                h.output_weight,
                h.status,
                h.created_at,
                h.closed_at,
            )
            for h in holds
        ],
        "ledger": [
            (
                e.kind,
                e.amount,
                e.balance_after,
                e.flagged,
                key(e.idempotency_key),
                e.reason,
                position.get(e.grant_id),
                e.hold.request_id.replace(tag, "") if e.hold else None,
                e.created_at,
            )
            for e in entries
        ],
        "notifications": [
            (n.kind, {k: v for k, v in n.context.items() if k != "renews_at"}) for n in notices
        ],
    }


# Long answers reach the edge cases (clamping, refusals, overruns) sooner than short ones; one
# history runs in autocommit (as in production), the others inside the test's transaction.
@pytest.mark.parametrize(
    ("seed", "longest", "database"),
    [
        (1, 250, "db"),
        (2, 250, "db"),
        (3, 250, "db"),
        (4, 40, "db"),
        (5, 40, "db"),
        (6, 250, "transactional_db"),
    ],
)
def test_fast_and_orm_paths_leave_identical_rows(request, settings, spy, seed, longest, database):
    request.getfixturevalue(database)
    settings.SOLARIS_MIN_ANSWER_TOKENS = 20  # some admissions are clamped, some refused
    PlanFactory(slug="vazio", monthly_allowance=0)
    price = ModelPriceFactory(model="odd", input_weight="0.37", output_weight="1.13")
    fast_user = UserFactory(email="fast@example.com", name="Igual", plan_slug="vazio")
    orm_user = UserFactory(email="orm@example.com", name="Igual", plan_slug="vazio")
    start = timezone.now().replace(microsecond=0)
    for user, tag in ((fast_user, "fast-"), (orm_user, "orm-")):
        credits_grant(user=user, amount=800, idempotency_key=f"{tag}seed", now=start)
    # Short calls spent one by one first: a fast settlement crosses into alert (800 × 80 % = 640).
    crossing = [
        op
        for i in range(14)
        for op in (("admit", f"s{i}", 10, 40, 1, False), ("settle", f"s{i}", 10, 40))
    ]
    ops = crossing + _history(seed, 120, longest)

    fast = _replay(fast_user, price, ops, "fast-", start)
    settings.SOLARIS_SQL_FAST_PATH = False
    taken_before = {name: len(calls) for name, calls in spy.items()}
    orm = _replay(orm_user, price, ops, "orm-", start)

    assert {name: len(calls) for name, calls in spy.items()} == taken_before  # ORM only
    assert fast == orm
    assert _rows(fast_user, "fast-") == _rows(orm_user, "orm-")
    # The history exercised both paths: common calls taken, edge cases declined.
    assert True in spy["open"] and False in spy["open"]
    assert True in spy["settle"] and False in spy["settle"]
    assert True in spy["release"]
    assert Notification.objects.filter(account_id=fast_user.pk, kind="credits_alert").exists()
    assert ledger_violations() == []


# --- each declined case falls back to the ORM (which raises or books as it always did) ---


@pytest.fixture
def funded(poor, unit_price):
    credits_grant(user=poor, amount=1_000, idempotency_key="fund")
    return poor, unit_price


def _admit(user, price, request_id, *, prompt=10, max_tokens=90, now=None):
    return hold_create(
        user=user,
        request_id=request_id,
        price=price,
        prompt_tokens=prompt,
        max_tokens=max_tokens,
        now=now,
    )


def _statements(work):
    with CaptureQueriesContext(connection) as queries:
        try:
            result = work()
        except Exception as error:  # the ORM's answer, asserted on by the caller
            result = error
    return result, [query["sql"] for query in queries.captured_queries]


def test_common_admission_is_one_statement(funded):
    user, price = funded
    admission, sql = _statements(lambda: _admit(user, price, "r1"))
    assert len(sql) == 1 and "solaris_hold_open" in sql[0]
    assert (admission.hold.amount, admission.max_tokens, admission.clamped) == (100, 90, False)
    assert Hold.objects.get(pk=admission.hold.pk).amount == 100
    assert Account.objects.get(pk=user.pk).held == 100


def _declined(sql: list[str], function: str) -> None:
    assert function in sql[0]
    assert len(sql) > 1
    assert any("FOR UPDATE" in statement for statement in sql[1:])  # the ORM took the lock


def test_admission_declines_to_the_orm(funded, settings):
    user, price = funded
    settings.SOLARIS_MIN_ANSWER_TOKENS = 10
    _admit(user, price, "taken")

    error, sql = _statements(lambda: _admit(user, price, "taken"))
    _declined(sql, "solaris_hold_open")
    assert isinstance(error, ValidationError) and error.code == "duplicate"

    admission, sql = _statements(lambda: _admit(user, price, "clamped", max_tokens=2_000))
    _declined(sql, "solaris_hold_open")
    assert (admission.clamped, admission.max_tokens, admission.hold.amount) == (True, 890, 900)

    error, sql = _statements(lambda: _admit(user, price, "too-big"))
    _declined(sql, "solaris_hold_open")
    assert isinstance(error, InsufficientCredits)

    bare = UserFactory(plan_slug="vazio")
    Account.objects.filter(pk=bare.pk).delete()
    error, sql = _statements(lambda: _admit(bare, price, "no-account"))
    _declined(sql, "solaris_hold_open")
    assert isinstance(error, InsufficientCredits)


def test_admission_with_a_grant_due_declines_and_books_the_expiry(poor, unit_price):
    now = timezone.now()
    credits_grant(
        user=poor, amount=100, idempotency_key="soon", expires_at=now + timedelta(hours=1)
    )
    credits_grant(user=poor, amount=500, idempotency_key="long")
    later = now + timedelta(hours=2)
    admission, sql = _statements(lambda: _admit(poor, unit_price, "r", now=later))
    _declined(sql, "solaris_hold_open")
    assert admission.hold.amount == 100
    assert LedgerEntry.objects.filter(kind="expiry", amount=-100).count() == 1
    assert ledger_violations() == []


def test_bad_token_counts_never_reach_the_function(funded):
    user, price = funded
    error, sql = _statements(lambda: _admit(user, price, "bad", prompt=-1))
    assert isinstance(error, ValidationError)
    assert not any("solaris_hold_open" in statement for statement in sql)
    _admit(user, price, "r")
    error, sql = _statements(
        lambda: hold_settle(request_id="r", prompt_tokens=-1, completion_tokens=5)
    )
    assert isinstance(error, ValueError)
    assert not any("solaris_hold_settle" in statement for statement in sql)


def test_common_settlement_is_one_statement_and_returns_saved_rows(funded):
    user, price = funded
    _admit(user, price, "r")
    settlement, sql = _statements(
        lambda: hold_settle_summarised(request_id="r", prompt_tokens=10, completion_tokens=40)
    )
    assert len(sql) == 1 and "solaris_hold_settle" in sql[0]
    entry = settlement.entry
    stored = LedgerEntry.objects.get(pk=entry.pk)
    fields = ("kind", "amount", "balance_after", "idempotency_key", "flagged", "reason", "hold_id")
    assert [getattr(entry, name) for name in fields] == [getattr(stored, name) for name in fields]
    assert entry.created_at == stored.created_at
    assert entry.hold.status == Hold.Status.SETTLED == Hold.objects.get(request_id="r").status
    summary = settlement.summary
    assert (summary.balance, summary.held, summary.available, summary.used) == (950, 0, 950, 50)
    # A retry is the ORM's idempotent branch: the same entry, nothing booked twice.
    again, sql = _statements(
        lambda: hold_settle(request_id="r", prompt_tokens=10, completion_tokens=40)
    )
    _declined(sql, "solaris_hold_settle")
    assert again.pk == entry.pk
    assert LedgerEntry.objects.filter(kind="usage").count() == 1


def test_settlement_of_nothing_closes_the_hold_in_one_statement(funded):
    user, price = funded
    _admit(user, price, "r")
    settlement, sql = _statements(
        lambda: hold_settle_summarised(request_id="r", prompt_tokens=0, completion_tokens=0)
    )
    assert len(sql) == 1
    assert settlement.entry is None
    assert Hold.objects.get(request_id="r").status == Hold.Status.SETTLED
    assert Account.objects.get(pk=user.pk).held == 0
    assert ledger_violations() == []


def test_settlement_declines_to_the_orm(funded):
    user, price = funded
    _admit(user, price, "over")
    entry, sql = _statements(
        lambda: hold_settle(request_id="over", prompt_tokens=10, completion_tokens=200)
    )
    _declined(sql, "solaris_hold_settle")
    assert (entry.amount, entry.flagged) == (-210, True)

    _admit(user, price, "late")
    hold_release(request_id="late")
    entry, sql = _statements(
        lambda: hold_settle(request_id="late", prompt_tokens=10, completion_tokens=5)
    )
    _declined(sql, "solaris_hold_settle")
    assert (entry.amount, entry.flagged) == (-15, True)  # the reaper released it: still charged

    error, sql = _statements(
        lambda: hold_settle(request_id="never", prompt_tokens=1, completion_tokens=1)
    )
    assert "solaris_hold_settle" in sql[0]
    assert isinstance(error, Hold.DoesNotExist)
    assert ledger_violations() == []


def test_settlement_the_grants_cannot_cover_declines_and_books_debt(funded):
    user, price = funded
    _admit(user, price, "a", max_tokens=490)
    _admit(user, price, "b", max_tokens=490)
    hold_settle(request_id="a", prompt_tokens=10, completion_tokens=900)  # overran: 910 drawn
    entry, sql = _statements(
        lambda: hold_settle(request_id="b", prompt_tokens=10, completion_tokens=190)
    )
    _declined(sql, "solaris_hold_settle")
    assert entry.amount == -200
    account = Account.objects.get(pk=user.pk)
    assert (account.balance, account.debt, account.held) == (-110, 110, 0)
    assert ledger_violations() == []


def test_settlement_with_a_grant_due_declines_and_expires_after_paying(poor, unit_price):
    now = timezone.now()
    credits_grant(
        user=poor, amount=100, idempotency_key="soon", expires_at=now + timedelta(hours=1)
    )
    _admit(poor, unit_price, "r", now=now)
    later = now + timedelta(hours=2)
    entry, sql = _statements(
        lambda: hold_settle(request_id="r", prompt_tokens=10, completion_tokens=20, now=later)
    )
    _declined(sql, "solaris_hold_settle")
    assert entry.amount == -30
    account = Account.objects.get(pk=poor.pk)
    assert (account.balance, account.held) == (0, 0)
    assert LedgerEntry.objects.get(kind="expiry").amount == -70
    assert ledger_violations() == []


def test_release(funded):
    user, price = funded
    _admit(user, price, "r")
    _result, sql = _statements(lambda: hold_release(request_id="r"))
    assert len(sql) == 1 and "solaris_hold_release" in sql[0]
    assert Hold.objects.get(request_id="r").status == Hold.Status.RELEASED
    assert Account.objects.get(pk=user.pk).held == 0
    _result, sql = _statements(lambda: hold_release(request_id="r"))
    assert len(sql) == 1  # already closed: nothing to do, as in the ORM
    error, sql = _statements(lambda: hold_release(request_id="missing"))
    assert isinstance(error, Hold.DoesNotExist)

    now = timezone.now()
    credits_grant(user=user, amount=50, idempotency_key="soon", expires_at=now + timedelta(hours=1))
    _admit(user, price, "due", now=now)
    _result, sql = _statements(lambda: hold_release(request_id="due", now=now + timedelta(hours=2)))
    _declined(sql, "solaris_hold_release")
    assert LedgerEntry.objects.filter(kind="expiry").count() == 1
    assert ledger_violations() == []


def test_switched_off_by_the_setting(funded, settings):
    user, price = funded
    settings.SOLARIS_SQL_FAST_PATH = False
    _admission, sql = _statements(lambda: _admit(user, price, "r"))
    _settlement, settle_sql = _statements(
        lambda: hold_settle(request_id="r", prompt_tokens=1, completion_tokens=1)
    )
    assert not any("solaris_hold" in statement for statement in [*sql, *settle_sql])
    assert LedgerEntry.objects.get(kind="usage").amount == -2


def test_fast_settlement_notifies_a_crossing_once(funded, settings):
    user, price = funded
    settings.SOLARIS_ALERT_THRESHOLD = 80
    settings.SOLARIS_BLOCKED_PROMPT_TOKENS = 1  # blocked below 2 credits: room for the alert
    settings.SOLARIS_MIN_ANSWER_TOKENS = 1
    _admit(user, price, "a")
    _statements(lambda: hold_settle(request_id="a", prompt_tokens=10, completion_tokens=60))
    assert not Notification.objects.exists()
    _admit(user, price, "b", max_tokens=800)
    _entry, sql = _statements(
        lambda: hold_settle(request_id="b", prompt_tokens=10, completion_tokens=750)
    )
    assert "solaris_hold_settle" in sql[0] and len(sql) > 1  # the rare catch-up, under the lock
    notice = Notification.objects.get()
    assert notice.kind == Notification.Kind.CREDITS_ALERT
    assert Account.objects.get(pk=user.pk).notified_state == Account.State.ALERT
    _admit(user, price, "c", max_tokens=20)
    _entry, sql = _statements(
        lambda: hold_settle(request_id="c", prompt_tokens=10, completion_tokens=10)
    )
    assert len(sql) == 1  # still in alert: already notified, no second statement
    assert Notification.objects.count() == 1


# --- concurrency on one account (threads, each with its own connection, autocommit) ---


@pytest.fixture
def shared(transactional_db):
    PlanFactory(slug="vazio", monthly_allowance=0)
    user = UserFactory(plan_slug="vazio")
    credits_grant(user=user, amount=1_000, idempotency_key="fund")
    price = ModelPriceFactory(model="unit", input_weight="1", output_weight="1")
    return user, price


def test_concurrent_admit_settle_release_never_overspend_and_book_exactly(shared, settings):
    user, price = shared
    settings.SOLARIS_MIN_ANSWER_TOKENS = 40  # holds of exactly 50, never clamped
    available_seen = []

    def call(index: int):
        if index % 10 == 7:  # the ORM path takes the same lock meanwhile
            credits_grant(user=user, amount=30, idempotency_key=f"top-up-{index}")
            return "granted"
        request_id = f"c-{index}"
        try:
            _admit(user, price, request_id, prompt=10, max_tokens=40)
        except InsufficientCredits:
            return "refused"
        available_seen.append(Account.objects.get(pk=user.pk).available)
        if index % 5 == 0:
            hold_release(request_id=request_id)
            return 0
        completion = index % 41  # charge 10..50: within the hold
        return -hold_settle(
            request_id=request_id, prompt_tokens=10, completion_tokens=completion
        ).amount

    results = race(60, call)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    charged = [r for r in results if isinstance(r, int)]
    assert charged  # some calls went through
    assert min(available_seen) >= 0
    granted = 1_000 + 30 * results.count("granted")
    account = Account.objects.get(pk=user.pk)
    assert (account.balance, account.held, account.debt) == (granted - sum(charged), 0, 0)
    usage = LedgerEntry.objects.filter(kind="usage")
    assert sorted(-entry.amount for entry in usage) == sorted(c for c in charged if c)
    assert not usage.filter(flagged=True).exists()
    assert Hold.objects.filter(status="open").count() == 0
    assert ledger_violations() == []
    call_command("check_ledger")


def test_settle_and_release_racing_on_one_hold_book_once(shared):
    user, price = shared
    for round_number in range(5):
        request_id = f"race-{round_number}"
        _admit(user, price, request_id, prompt=10, max_tokens=40)

        def work(index: int, request_id=request_id):
            if index % 2:
                return hold_release(request_id=request_id)
            return hold_settle(request_id=request_id, prompt_tokens=10, completion_tokens=20)

        results = race(6, work)
        assert not [r for r in results if isinstance(r, Exception)], results
        assert Hold.objects.get(request_id=request_id).status in ("settled", "released")
        assert LedgerEntry.objects.filter(hold__request_id=request_id).count() <= 1
    account = Account.objects.get(pk=user.pk)
    assert account.held == 0
    assert ledger_violations() == []
