import hashlib
import hmac
import json
import time
import uuid

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from credits.selectors import ledger_violations
from payments.models import Payment
from solaris.celery import app as celery_app
from tests.factories import CreditPackageFactory, PlanFactory, UserFactory
from tests.payments.standin import MercadoPagoStandIn

ACCESS_TOKEN = "APP_USR-1234567890123456-010203-0a1b2c3d4e5f67890a1b2c3d4e5f6789-1234567890"
WEBHOOK_SECRET = "f3a9c1e07b2d4e6a8c0b1d3e5f7a9c1e"
PUBLIC_URL = "https://solaris.example.com"
WEBHOOK = reverse("payments:mercadopago-webhook")
PURCHASES = reverse("portal:api-purchases")


def purchase_url(purchase_id) -> str:
    return reverse("portal:api-purchase", args=[purchase_id])


@pytest.fixture(autouse=True)
def eager_celery():
    """Webhook processing and e-mails run in-process, as in the embedded default."""
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = saved


@pytest.fixture(autouse=True)
def fresh_cache():
    """The poll's read-back throttle lives in the cache: each test starts from zero."""
    cache.clear()


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def ledger_stays_clean(request):
    """After every payments test that touched the database, `check_ledger` finds nothing."""
    used = [name for name in ("transactional_db", "db") if name in request.fixturenames]
    if used:
        request.getfixturevalue(used[0])  # so the database outlives this check
    yield
    if used:
        assert ledger_violations() == []


@pytest.fixture
def mercadopago(settings):
    """Solaris pointed at the stand-in, with a webhook secret and a public https URL."""
    standin = MercadoPagoStandIn(access_token=ACCESS_TOKEN).start()
    settings.MERCADOPAGO_ACCESS_TOKEN = ACCESS_TOKEN
    settings.MERCADOPAGO_API_BASE = standin.url
    settings.MERCADOPAGO_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.MERCADOPAGO_TIMEOUT_SECONDS = 5.0
    settings.SOLARIS_PUBLIC_URL = PUBLIC_URL
    yield standin
    standin.stop()


@pytest.fixture
def buyer(db):
    """Ana on a plan without allowance: every credit she has comes from what she buys."""
    PlanFactory(slug="vazio", monthly_allowance=0)
    return UserFactory(email="ana@example.com", name="Ana Souza", plan_slug="vazio")


@pytest.fixture
def package(db):
    return CreditPackageFactory(name="Pacote 100 mil", credits=100_000, price_cents=4_990)


def signature(*, data_id: str, request_id: str, ts: int, secret: str = WEBHOOK_SECRET) -> str:
    """`x-signature` as Mercado Pago documents it: HMAC-SHA256 with the secret over
    `id:<data.id>;request-id:<x-request-id>;ts:<ts>;`, hex, sent as `ts=…,v1=…`."""
    manifest = f"id:{data_id};request-id:{request_id};ts:{ts};"
    v1 = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    return f"ts={ts},v1={v1}"


def notification(
    client,
    payment_id,
    *,
    ts: int | None = None,
    secret: str = WEBHOOK_SECRET,
    signed_id: str | None = None,
    topic: str = "payment",
    raw_body: str | None = None,
):
    """One webhook delivery shaped as Mercado Pago sends it: `?data.id=…&type=payment`, the JSON
    body, `x-signature` and `x-request-id`."""
    request_id = str(uuid.uuid4())
    ts = int(time.time()) if ts is None else ts
    body = {
        "action": "payment.updated",
        "api_version": "v1",
        "data": {"id": str(payment_id)},
        "date_created": "2026-03-02T10:04:58Z",
        "id": 123456789012,
        "live_mode": True,
        "type": topic,
        "user_id": "1234567890",
    }
    header = signature(
        data_id=str(signed_id if signed_id is not None else payment_id),
        request_id=request_id,
        ts=ts,
        secret=secret,
    )
    return client.post(
        f"{WEBHOOK}?data.id={payment_id}&type={topic}",
        data=json.dumps(body) if raw_body is None else raw_body,
        content_type="application/json",
        HTTP_X_SIGNATURE=header,
        HTTP_X_REQUEST_ID=request_id,
    )


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """Deliver a signed notification and run what its commit hands to Celery (eagerly)."""

    def deliver(payment_id, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return notification(client, payment_id, **kwargs)

    return deliver


@pytest.fixture
def buy(client, buyer, django_capture_on_commit_callbacks):
    """Ana buys a package through the API (signed in); returns the response."""
    client.force_login(buyer)

    def buy(package):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(PURCHASES, {"package": package.pk}, content_type="application/json")

    return buy


@pytest.fixture
def paid(buy, deliver, package, mercadopago):
    """Ana bought the 100 mil package for R$ 49,90 and paid the PIX."""
    payment = Payment.objects.get(purchase_id=buy(package).json()["id"])
    mercadopago.approve(payment.provider_payment_id)
    deliver(payment.provider_payment_id)
    payment.refresh_from_db()
    assert payment.status == "paid"
    mail.outbox.clear()
    return payment
