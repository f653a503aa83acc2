"""Integration keys and the LibreChat identity (docs/librechat.md)."""

import pytest

from accounts.models import User
from accounts.services import integration_create


@pytest.fixture
def integration_key(plan):
    _integration, raw = integration_create(name="librechat", auto_provision=True)
    return raw


def me(client, key, **headers):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    extra.update(
        {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    )
    return client.get("/api/v1/me", **extra)


def test_known_user_by_email_header(client, user, integration_key):
    response = me(client, integration_key, **{"X-LibreChat-User-Email": "ANA@example.com"})
    assert response.status_code == 200
    assert response.json()["email"] == "ana@example.com"


def test_unknown_user_is_provisioned_on_the_default_plan(client, integration_key):
    response = me(
        client,
        integration_key,
        **{"X-LibreChat-User-Email": "novo@example.com", "X-LibreChat-User-Id": "65f0abc"},
    )
    assert response.status_code == 200
    assert response.json()["plan"] == "basico"
    created = User.objects.get(email="novo@example.com")
    assert created.librechat_id == "65f0abc"
    assert created.account.balance == 100_000
    # The same LibreChat id alone now finds the same user.
    again = me(client, integration_key, **{"X-LibreChat-User-Id": "65f0abc"})
    assert again.json()["id"] == created.pk


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-LibreChat-User-Email": ""},
        {"X-LibreChat-User-Email": "   "},
        {"X-LibreChat-User-Email": "{{LIBRECHAT_USER_EMAIL}}"},
        {
            "X-LibreChat-User-Email": "{{LIBRECHAT_USER_EMAIL}}",
            "X-LibreChat-User-Id": "{{LIBRECHAT_USER_ID}}",
        },
        {"X-LibreChat-User-Email": "not-an-email"},
    ],
)
def test_missing_empty_or_placeholder_identity_is_refused(client, user, integration_key, headers):
    response = me(client, integration_key, **headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "user_identity_missing"
    assert User.objects.count() == 1


def test_unknown_user_is_refused_when_the_integration_does_not_provision(client, plan):
    _integration, raw = integration_create(name="strict", auto_provision=False)
    response = me(client, raw, **{"X-LibreChat-User-Email": "ghost@example.com"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "user_identity_missing"
    assert not User.objects.filter(email="ghost@example.com").exists()


def test_unknown_librechat_id_without_email_is_refused(client, integration_key):
    response = me(client, integration_key, **{"X-LibreChat-User-Id": "no-such-id"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "user_identity_missing"
