"""Mercado Pago's `x-signature`, checked against signatures made here independently, exactly as
its documentation describes them."""

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from payments.mercadopago import signature_manifest, signature_valid

SECRET = "your-secret-signature"
NOW = datetime(2024, 1, 10, 17, 33, 30, tzinfo=UTC)
TS = int(NOW.timestamp())
REQUEST_ID = "bb56a2f1-6aae-46ac-982e-9dcd3581d08e"


def sign(manifest: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()


def valid(header: str, *, data_id: str = "123456", request_id: str = REQUEST_ID, **kwargs) -> bool:
    options = {"secret": SECRET, "now": NOW, "tolerance_seconds": 300} | kwargs
    return signature_valid(header=header, request_id=request_id, data_id=data_id, **options)


def test_the_manifest_is_the_documented_template():
    manifest = signature_manifest(data_id="123456", request_id=REQUEST_ID, ts=str(TS))
    assert manifest == f"id:123456;request-id:{REQUEST_ID};ts:{TS};"


def test_an_alphanumeric_data_id_is_lower_cased_and_missing_values_are_left_out():
    assert signature_manifest(data_id="ORD01JQ4S4KY", request_id="r", ts="1") == (
        "id:ord01jq4s4ky;request-id:r;ts:1;"
    )
    assert signature_manifest(data_id="", request_id="", ts="1") == "ts:1;"
    assert signature_manifest(data_id="123", request_id="", ts="1") == "id:123;ts:1;"


def test_a_signature_made_as_documented_is_valid():
    v1 = sign(f"id:123456;request-id:{REQUEST_ID};ts:{TS};")
    assert valid(f"ts={TS},v1={v1}")
    assert valid(f"ts={TS}, v1={v1}")  # tolerant of the space after the comma
    assert valid(f"v1={v1},ts={TS}")  # and of the order
    assert valid(f"ts={TS},v1={v1.upper()}")


def test_anything_else_is_invalid():
    v1 = sign(f"id:123456;request-id:{REQUEST_ID};ts:{TS};")
    assert not valid(f"ts={TS},v1={v1}", data_id="123457")
    assert not valid(f"ts={TS},v1={v1}", request_id="another")
    assert not valid(f"ts={TS + 1},v1={v1}")
    assert not valid(f"ts={TS},v1={v1}", secret="another-secret")
    assert not valid(f"ts={TS},v1={v1}", secret="")
    wrong_template = sign(f"id:123456;request-id:{REQUEST_ID};ts:{TS}")  # no final ';'
    assert not valid(f"ts={TS},v1={wrong_template}")
    for header in ("", "ts=,v1=", f"ts={TS}", f"v1={v1}", "garbage", f"ts=x{TS},v1={v1}"):
        assert not valid(header)
    huge = "9" * 5000  # more digits than Python turns into an int
    assert not valid(f"ts={huge},v1={sign(f'id:123456;request-id:{REQUEST_ID};ts:{huge};')}")


@pytest.mark.parametrize(
    ("offset", "ok"), [(-300, True), (300, True), (-301, False), (301, False), (-86400, False)]
)
def test_the_timestamp_must_be_within_the_tolerance(offset, ok):
    ts = TS + offset
    v1 = sign(f"id:123456;request-id:{REQUEST_ID};ts:{ts};")
    assert valid(f"ts={ts},v1={v1}") is ok


def test_a_timestamp_in_milliseconds_is_read_as_such():
    ts = TS * 1000 + 250
    v1 = sign(f"id:123456;request-id:{REQUEST_ID};ts:{ts};")
    assert valid(f"ts={ts},v1={v1}")
    stale = (TS - 600) * 1000
    assert not valid(f"ts={stale},v1={sign(f'id:123456;request-id:{REQUEST_ID};ts:{stale};')}")
