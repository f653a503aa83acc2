"""The payment provider seam: what Solaris asks of a payment provider, in Solaris's terms.

Amounts are integer cents, times are aware datetimes, and each provider sorts its own statuses into
the few outcomes Solaris acts on. Mercado Pago (payments/mercadopago.py) is the one implementation;
another provider joins by implementing `PaymentProvider` and naming itself in `Payment.Provider`.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class Outcome:
    """Where a payment stands, whatever the provider calls it."""

    PENDING = "pending"  # waiting for the payer (or for the provider to settle it)
    APPROVED = "approved"  # the money arrived
    FAILED = "failed"  # rejected or cancelled: no money moved
    EXPIRED = "expired"  # not paid in time: no money moved
    REFUNDED = "refunded"  # the whole amount went back to the payer
    DISPUTED = "disputed"  # charged back or in mediation: the money is contested


@dataclass(frozen=True)
class PixCharge:
    """What Solaris asks for: one PIX charge for one purchase."""

    reference: str  # ours, unique per charge; the provider echoes it back
    idempotency_key: str  # the same for every attempt at this charge
    amount_cents: int
    description: str
    payer_email: str
    expires_at: datetime
    notification_url: str  # empty: the provider's account-wide setting applies


@dataclass(frozen=True)
class RemoteRefund:
    provider_id: str
    amount_cents: int | None  # None when the provider's amount is not a whole number of cents
    confirmed: bool  # the provider says the money is on its way back
    status: str  # the provider's own word, kept for finance


@dataclass(frozen=True)
class RemotePayment:
    """A payment as the provider reports it now (never trusted from a notification's body)."""

    provider_id: str
    outcome: str  # an Outcome
    status: str  # the provider's own words, kept for finance
    status_detail: str
    amount_cents: int | None  # None when the provider's amount is not a whole number of cents
    refunded_cents: int
    currency: str
    reference: str
    expires_at: datetime | None
    approved_at: datetime | None
    qr_code: str
    qr_code_base64: str
    ticket_url: str
    refunds: tuple[RemoteRefund, ...] = ()


class ProviderError(Exception):
    """The provider could not do what was asked.

    `permanent` when it refused the request itself (asking again the same way fails again);
    otherwise the outcome is unknown (network, timeout, 5xx) and the same request may be retried
    with the same idempotency key.
    """

    def __init__(self, message: str, *, permanent: bool = False, status: int | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.status = status


class PaymentNotFound(ProviderError):
    def __init__(self, message: str):
        super().__init__(message, permanent=True, status=404)


class PaymentProvider(Protocol):
    name: str

    def pix_charge_create(self, *, charge: PixCharge) -> RemotePayment: ...

    def payment_get(self, *, provider_id: str) -> RemotePayment: ...

    def refund_create(
        self, *, provider_id: str, amount_cents: int | None, idempotency_key: str
    ) -> RemoteRefund:
        """Refund `amount_cents`, or the whole payment when None."""
        ...
