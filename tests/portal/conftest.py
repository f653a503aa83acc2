import socket
import time
import uuid
from email import message_from_bytes
from email.policy import default

import jwt
import pytest
from aiosmtpd.controller import Controller
from django.core.cache import cache

from credits.services import hold_create, hold_settle
from tests.factories import CreditPackageFactory, ModelPriceFactory

LIBRECHAT_SECRET = "librechat-test-secret-0123456789abcdef"


def librechat_token(*, user_id="lc-1", email="ana@example.com", ttl=900, secret=LIBRECHAT_SECRET):
    """A token shaped like LibreChat's own (its generateToken payload)."""
    now = int(time.time())
    payload = {"id": user_id, "username": "ana", "provider": "local", "email": email}
    payload.update({"iat": now, "exp": now + ttl})
    return jwt.encode(payload, secret, algorithm="HS256")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Sign-in throttles live in the cache: each test starts from zero."""
    cache.clear()


@pytest.fixture
def librechat(settings):
    settings.LIBRECHAT_JWT_SECRET = LIBRECHAT_SECRET
    return librechat_token


@pytest.fixture
def unit_price(db):
    return ModelPriceFactory(model="gpt-unit", input_weight="1", output_weight="1")


@pytest.fixture
def spend(unit_price):
    """Spend exactly `amount` credits through a real hold and settlement (amount ≥ 2)."""

    def _spend(user, amount: int, model_price=None):
        request_id = f"req-{uuid.uuid4().hex}"
        hold_create(
            user=user,
            request_id=request_id,
            price=model_price or unit_price,
            prompt_tokens=amount - 1,
            max_tokens=1,
        )
        hold_settle(request_id=request_id, prompt_tokens=amount - 1, completion_tokens=1)
        return request_id

    return _spend


@pytest.fixture
def package(db):
    return CreditPackageFactory(name="Pacote 50 mil", credits=50_000, price_cents=2_990)


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            message_from_bytes(envelope.original_content or envelope.content, policy=default)
        )
        return "250 OK"


@pytest.fixture
def smtp_sink(settings):
    """A real SMTP server (aiosmtpd) on loopback; Django sends to it over SMTP."""
    inbox = _Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    yield inbox
    controller.stop()
