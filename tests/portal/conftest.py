import time
import uuid

import jwt
import pytest

from credits.services import hold_create, hold_settle
from tests.factories import CreditPackageFactory, ModelPriceFactory

LIBRECHAT_SECRET = "librechat-test-secret-0123456789abcdef"


def librechat_token(*, user_id="lc-1", email="ana@example.com", ttl=900, secret=LIBRECHAT_SECRET):
    """A token shaped like LibreChat's own (its generateToken payload)."""
    now = int(time.time())
    payload = {"id": user_id, "username": "ana", "provider": "local", "email": email}
    payload.update({"iat": now, "exp": now + ttl})
    return jwt.encode(payload, secret, algorithm="HS256")


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
