"""Reconciliation (beat, every minute): lost webhooks are caught by reading pending charges back,
charges past their time expire, and charges whose creation was never answered are closed."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from credits.models import Account, LedgerEntry
from payments import tasks
from payments.models import Payment
from payments.selectors import reconciliation_report
from payments.services import payments_reconcile
from tests.payments.conftest import purchase_url


@pytest.fixture
def charge(buy, package, mercadopago):
    response = buy(package)
    assert response.status_code == 201
    mail.outbox.clear()
    return Payment.objects.get(purchase_id=response.json()["id"])


def test_a_lost_webhook_is_caught_by_reconciliation(
    charge, buyer, client, mercadopago, django_capture_on_commit_callbacks
):
    mercadopago.approve(charge.provider_payment_id)  # ... and the notification never arrives
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.reconcile_payments() == 1
    assert client.get(purchase_url(charge.purchase_id)).json()["status"] == "paid"
    assert Account.objects.get(pk=buyer.pk).balance == 100_000
    assert len([m for m in mail.outbox if m.to == ["ana@example.com"]]) == 1
    # Paid charges are not read again; running it again changes nothing.
    reads = len(mercadopago.requests)
    assert payments_reconcile().read == 0
    assert len(mercadopago.requests) == reads
    assert LedgerEntry.objects.filter(account_id=buyer.pk).count() == 1


def test_a_pending_charge_past_its_time_expires(charge, buyer, client, mercadopago):
    assert payments_reconcile().read == 1
    charge.refresh_from_db()
    assert charge.status == "pending"
    late = charge.expires_at + timedelta(minutes=11)
    payments_reconcile(now=late)
    charge.refresh_from_db()
    assert charge.status == "expired" and charge.purchase.status == "cancelled"
    assert client.get(purchase_url(charge.purchase_id)).json()["status"] == "expired"
    assert not LedgerEntry.objects.filter(account_id=buyer.pk).exists()


def test_a_pix_paid_in_its_last_seconds_is_still_granted(charge, buyer, mercadopago):
    """Within the grace after the expiry a pending charge waits: it may be settling."""
    payments_reconcile(now=charge.expires_at + timedelta(minutes=5))
    charge.refresh_from_db()
    assert charge.status == "pending"
    mercadopago.approve(charge.provider_payment_id)
    payments_reconcile(now=charge.expires_at + timedelta(minutes=6))
    charge.refresh_from_db()
    assert charge.status == "paid"
    assert Account.objects.get(pk=buyer.pk).balance == 100_000


def test_a_charge_whose_creation_was_never_answered_is_closed_after_its_expiry(
    buy, buyer, package, mercadopago
):
    mercadopago.fail_next(503)
    assert buy(package).status_code == 503
    payment = Payment.objects.get(purchase__user=buyer)
    assert payment.provider_payment_id == ""
    assert payments_reconcile().expired == 0
    payments_reconcile(now=payment.expires_at)
    payment.refresh_from_db()
    assert payment.status == "expired" and payment.purchase.status == "cancelled"


def test_reconciliation_without_mercado_pago_does_nothing(charge, settings):
    settings.MERCADOPAGO_ACCESS_TOKEN = ""
    result = payments_reconcile()
    assert (result.read, result.expired, result.failed) == (0, 0, 0)


def test_a_provider_outage_is_counted_and_retried_next_run(charge, buyer, mercadopago):
    mercadopago.approve(charge.provider_payment_id)
    mercadopago.fail_next(500)
    assert payments_reconcile().failed == 1
    assert Account.objects.get(pk=buyer.pk).balance == 0
    assert payments_reconcile().read == 1
    assert Account.objects.get(pk=buyer.pk).balance == 100_000


def test_beat_runs_the_reconciliation_every_minute():
    schedule = settings.CELERY_BEAT_SCHEDULE["reconcile-payments"]
    assert schedule == {"task": "payments.tasks.reconcile_payments", "schedule": 60.0}
    assert tasks.reconcile_payments.name == schedule["task"]


def test_the_reconciliation_report_lists_what_finance_must_look_at(charge, mercadopago):
    assert reconciliation_report().review == []
    mercadopago.approve(charge.provider_payment_id, transaction_amount=1)
    payments_reconcile(now=timezone.now())
    report = reconciliation_report()
    assert [p.pk for p in report.review] == [charge.pk]
    assert [p.pk for p in report.paid_not_granted] == [charge.pk]
    assert report.granted_not_paid == []


def test_polling_a_pending_purchase_reads_it_back_at_most_every_ten_seconds(
    charge, buyer, client, mercadopago, django_capture_on_commit_callbacks
):
    def reads():
        return sum(1 for method, _path, _body in mercadopago.requests if method == "GET")

    assert client.get(purchase_url(charge.purchase_id)).json()["status"] == "pending"
    assert reads() == 1
    mercadopago.approve(charge.provider_payment_id)  # the webhook is lost
    assert client.get(purchase_url(charge.purchase_id)).json()["status"] == "pending"
    assert reads() == 1  # read less than ten seconds ago
    cache.delete(f"payments:refresh:{charge.pk}")  # ten seconds pass
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(purchase_url(charge.purchase_id)).json()["status"] == "paid"
    assert Account.objects.get(pk=buyer.pk).balance == 100_000
    assert len([m for m in mail.outbox if m.to == ["ana@example.com"]]) == 1
    cache.clear()
    client.get(purchase_url(charge.purchase_id))
    assert reads() == 2  # a paid purchase is not read again


def test_polling_while_mercado_pago_is_down_shows_the_last_known_status(
    charge, client, mercadopago
):
    mercadopago.fail_next(500)
    response = client.get(purchase_url(charge.purchase_id))
    assert response.status_code == 200 and response.json()["status"] == "pending"


def test_the_reconcile_command_says_what_it_did(charge, mercadopago, capsys):
    mercadopago.approve(charge.provider_payment_id)
    call_command("reconcile_payments")
    assert "read 1, expired 0" in capsys.readouterr().out
    charge.refresh_from_db()
    assert charge.status == "paid"
