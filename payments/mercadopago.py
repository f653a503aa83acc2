"""Mercado Pago, the one payment provider: its REST API for PIX charges, payments and refunds, and
the check of its webhook signature (docs/payments.md).

The REST API is called with httpx, not the official SDK: the SDK's base URL is a private constant
(MERCADOPAGO_API_BASE must be able to point elsewhere, e.g. at the tests' stand-in), it brings a
second HTTP stack (requests), and a dozen plain requests are simpler to read than its plumbing.
Amounts are read as Decimal and kept as integer cents; nothing here touches the database.
"""

import hashlib
import hmac
import json
import logging
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from django.conf import settings
from django.utils import timezone

from payments.providers import (
    Outcome,
    PaymentNotFound,
    PixCharge,
    ProviderError,
    RemotePayment,
    RemoteRefund,
)

logger = logging.getLogger(__name__)

NAME = "mercadopago"
OUTCOMES = {
    "pending": Outcome.PENDING,
    "in_process": Outcome.PENDING,
    "authorized": Outcome.PENDING,
    "approved": Outcome.APPROVED,
    "rejected": Outcome.FAILED,
    "cancelled": Outcome.FAILED,
    "refunded": Outcome.REFUNDED,
    "charged_back": Outcome.DISPUTED,
    "in_mediation": Outcome.DISPUTED,
}
# Mercado Pago's resource ids are numbers; anything else never reaches a URL path.
RESOURCE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Requests that asking again may answer differently: too early, in progress, throttled.
RETRYABLE_4XX = {408, 409, 423, 429}
MILLISECONDS_FROM = 10**11  # a `ts` this large is in milliseconds (10¹¹ s is the year 5138)


# --- webhook signatures ---


def signature_manifest(*, data_id: str, request_id: str, ts: str) -> str:
    """The text Mercado Pago signs: `id:<data.id>;request-id:<x-request-id>;ts:<ts>;`.

    `data.id` comes from the notification URL's query string, lower-cased when alphanumeric; a
    value absent from the notification is left out of the manifest, as the documentation says.
    """
    if data_id.isalnum():
        data_id = data_id.lower()
    parts = []
    if data_id:
        parts.append(f"id:{data_id};")
    if request_id:
        parts.append(f"request-id:{request_id};")
    parts.append(f"ts:{ts};")
    return "".join(parts)


def signature_valid(
    *,
    header: str,
    request_id: str,
    data_id: str,
    secret: str,
    now: datetime,
    tolerance_seconds: int,
) -> bool:
    """Whether `x-signature: ts=<unix time>,v1=<hex HMAC-SHA256>` signs this notification with
    our secret and was made within the tolerance of now (either way)."""
    if not secret:
        return False
    fields = {}
    for item in header.split(","):
        key, sep, value = item.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip()
    ts, received = fields.get("ts", ""), fields.get("v1", "")
    if not (ts.isascii() and ts.isdigit() and len(ts) <= 16) or not received:
        return False
    manifest = signature_manifest(data_id=data_id, request_id=request_id, ts=ts)
    expected = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), received.lower().encode()):
        return False
    seconds = int(ts)
    if seconds >= MILLISECONDS_FROM:
        seconds //= 1000
    return abs(now.timestamp() - seconds) <= tolerance_seconds


# --- reading Mercado Pago's answers ---


def _text(value: Any, limit: int = 200) -> str:
    return "" if value is None or isinstance(value, dict | list) else str(value)[:limit]


def _cents(value: Any) -> int | None:
    """A JSON amount in reais as integer cents; None unless it is a whole number of cents."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    try:
        cents = Decimal(value) * 100
    except InvalidOperation:
        return None
    if not cents.is_finite() or cents != cents.to_integral_value():
        return None
    return int(cents)


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if timezone.is_aware(moment) else None


def _outcome(status: str, status_detail: str) -> str:
    """An unknown status waits (pending): only `approved` ever grants anything."""
    if status == "cancelled" and status_detail == "expired":
        return Outcome.EXPIRED
    return OUTCOMES.get(status, Outcome.PENDING)


def _refund(data: dict) -> RemoteRefund:
    status = _text(data.get("status"), 32)
    return RemoteRefund(
        provider_id=_text(data.get("id"), 64),
        amount_cents=_cents(data.get("amount")),
        confirmed=status == "approved",
        status=status,
    )


def _payment(data: dict) -> RemotePayment:
    interaction = data.get("point_of_interaction")
    transaction = interaction.get("transaction_data") if isinstance(interaction, dict) else None
    transaction = transaction if isinstance(transaction, dict) else {}
    status = _text(data.get("status"), 32)
    refunds = data.get("refunds")
    return RemotePayment(
        provider_id=_text(data.get("id"), 64),
        outcome=_outcome(status, _text(data.get("status_detail"), 64)),
        status=status,
        status_detail=_text(data.get("status_detail"), 64),
        amount_cents=_cents(data.get("transaction_amount")),
        refunded_cents=_cents(data.get("transaction_amount_refunded")) or 0,
        currency=_text(data.get("currency_id"), 8),
        reference=_text(data.get("external_reference"), 256),
        expires_at=_when(data.get("date_of_expiration")),
        approved_at=_when(data.get("date_approved")),
        qr_code=_text(transaction.get("qr_code"), 4000),
        qr_code_base64=_text(transaction.get("qr_code_base64"), 200_000),
        ticket_url=_text(transaction.get("ticket_url"), 500),
        refunds=tuple(_refund(item) for item in refunds or () if isinstance(item, dict)),
    )


class MercadoPago:
    """Mercado Pago's payments API (`/v1/payments`), with the access token as bearer."""

    name = NAME

    def __init__(self, *, access_token: str, api_base: str, timeout: float):
        self.access_token = access_token
        self.api_base = api_base
        self.timeout = timeout

    @classmethod
    def from_settings(cls) -> "MercadoPago | None":
        if not settings.MERCADOPAGO_ACCESS_TOKEN:
            return None
        return cls(
            access_token=settings.MERCADOPAGO_ACCESS_TOKEN,
            api_base=settings.MERCADOPAGO_API_BASE,
            timeout=settings.MERCADOPAGO_TIMEOUT_SECONDS,
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict | None = None,
        idempotency_key: str | None = None,
    ) -> dict:
        headers = {"Authorization": f"Bearer {self.access_token}", "Accept": "application/json"}
        if idempotency_key:
            headers["X-Idempotency-Key"] = idempotency_key
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(body)
        try:
            with httpx.Client(base_url=self.api_base, timeout=self.timeout) as client:
                response = client.request(method, path, headers=headers, content=content)
        except httpx.HTTPError as exc:
            raise ProviderError(f"Mercado Pago unreachable: {type(exc).__name__}") from exc
        try:
            data = response.json(parse_float=Decimal)
        except ValueError:
            data = None
        if response.is_success and isinstance(data, dict):
            return data
        message = _text(data.get("message")) if isinstance(data, dict) else ""
        status = response.status_code
        logger.warning(
            "mercado pago refused a request",
            extra={"method": method, "path": path, "status": status, "provider_message": message},
        )
        if status == 404:
            raise PaymentNotFound(f"Mercado Pago 404: {message}")
        permanent = 400 <= status < 500 and status not in RETRYABLE_4XX
        raise ProviderError(f"Mercado Pago {status}: {message}", permanent=permanent, status=status)

    def pix_charge_create(self, *, charge: PixCharge) -> RemotePayment:
        body: dict[str, Any] = {
            # The JSON number in reais Mercado Pago expects: cents / 100 is the nearest double
            # to the two-decimal amount, and its shortest repr is that amount exactly.
            "transaction_amount": charge.amount_cents / 100,
            "payment_method_id": "pix",
            "description": charge.description,
            "external_reference": charge.reference,
            "payer": {"email": charge.payer_email},
            "date_of_expiration": timezone.localtime(charge.expires_at).isoformat(
                timespec="milliseconds"
            ),
        }
        if charge.notification_url:
            body["notification_url"] = charge.notification_url
        data = self._call("POST", "/v1/payments", body=body, idempotency_key=charge.idempotency_key)
        return _payment(data)

    def payment_get(self, *, provider_id: str) -> RemotePayment:
        if not RESOURCE_ID.fullmatch(provider_id):
            raise PaymentNotFound("not a Mercado Pago payment id")
        return _payment(self._call("GET", f"/v1/payments/{provider_id}"))

    def refund_create(
        self, *, provider_id: str, amount_cents: int | None, idempotency_key: str
    ) -> RemoteRefund:
        if not RESOURCE_ID.fullmatch(provider_id):
            raise PaymentNotFound("not a Mercado Pago payment id")
        body: dict[str, Any] = {} if amount_cents is None else {"amount": amount_cents / 100}
        data = self._call(
            "POST",
            f"/v1/payments/{provider_id}/refunds",
            body=body,
            idempotency_key=idempotency_key,
        )
        return _refund(data)
