from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey
from accounts.selectors import key_find
from accounts.services import api_key_create, integration_create, key_revoke, key_touch


def test_key_is_stored_as_hash_and_visible_prefix_only(user):
    key, raw = api_key_create(user=user, name="laptop")
    assert raw.startswith("sol-") and not raw.startswith("sol-int-")
    assert len(raw) == len("sol-") + keys.SECRET_LENGTH
    stored = ApiKey.objects.get(pk=key.pk)
    assert stored.key_hash == keys.hash_key(raw) != raw
    assert stored.prefix == raw[:10]
    assert raw not in {getattr(stored, f.attname) for f in ApiKey._meta.fields if f.attname}


def test_key_verifies_and_wrong_or_revoked_keys_do_not(user):
    key, raw = api_key_create(user=user)
    assert key_find(raw_key=raw) == key
    assert key_find(raw_key=raw[:-1] + ("a" if raw[-1] != "a" else "b")) is None
    assert key_find(raw_key="not-a-solaris-key") is None
    key_revoke(key=key)
    assert key.revoked_at is not None
    assert key_find(raw_key=raw) is None


def test_integration_keys_have_their_own_prefix(db):
    integration, raw = integration_create(name="librechat", auto_provision=False)
    assert raw.startswith("sol-int-")
    assert integration.prefix == raw[: len("sol-int-") + keys.VISIBLE_LENGTH]
    assert key_find(raw_key=raw) == integration


def test_last_used_is_written_at_most_once_an_hour(user, django_assert_num_queries):
    key, _raw = api_key_create(user=user)
    with django_assert_num_queries(1):
        key_touch(key=key)
    first = key.last_used_at
    with django_assert_num_queries(0):
        key_touch(key=key)
    key.last_used_at = timezone.now() - timedelta(hours=2)
    key_touch(key=key)
    key.refresh_from_db()
    assert key.last_used_at > first


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer sol-doesnotexist", "Basic abc", "Bearer sol-int-doesnotexist"],
)
def test_missing_or_wrong_keys_get_openai_shaped_401(client, db, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/api/v1/me", **extra)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "code", "param"}
    assert "{" not in error["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_personal_key_identifies_its_user(client, user, user_key):
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {user_key}")
    assert response.status_code == 200
    assert response.json()["email"] == "ana@example.com"
    assert response.json()["plan"] == "basico"


def test_suspended_user_is_refused_with_403(client, user, user_key):
    user.is_suspended = True
    user.save()
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {user_key}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "account_suspended"
