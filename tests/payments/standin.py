"""A local stand-in for Mercado Pago's payments API: a real HTTP server on a free loopback port,
answering with the documented shapes (`POST /v1/payments` for PIX, `GET /v1/payments/{id}`,
`POST /v1/payments/{id}/refunds`), honouring `X-Idempotency-Key` as Mercado Pago does (the same
key answers the same payment), recording every key it receives, and letting a test change a
payment the way a payer, the bank or finance would (approve, reject, refund, charge back).
"""

import base64
import itertools
import json
import re
import threading
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A real 1×1 PNG: what `qr_code_base64` carries is a PNG image.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
    )
).decode()
PAYER = {
    "id": "1984123456",
    "email": "comprador@example.com",
    "first_name": "Ana",
    "last_name": "Souza",
    "identification": {"type": "CPF", "number": "19119119100"},
    "phone": {"area_code": "11", "number": "987654321"},
    "type": None,
}


def _now() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="milliseconds")


def _error(status: int, message: str, error: str, code: int = 0) -> dict:
    cause = [{"code": code, "description": message}] if code else []
    return {"message": message, "error": error, "status": status, "cause": cause}


def _money(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal) or value <= 0:
        return None
    return Decimal(value)


class MercadoPagoStandIn:
    def __init__(self, *, access_token: str):
        self.access_token = access_token
        self.payments: dict[str, dict] = {}
        self.answers: dict[tuple[str, str], tuple[int, dict]] = {}  # (path, key) → first answer
        self.idempotency_keys: list[str] = []  # every X-Idempotency-Key received, in order
        self.requests: list[tuple[str, str, dict | None]] = []  # method, path, JSON body
        self.failures: list[tuple[int, bool]] = []  # (status, after doing the work)
        self.refund_status = "approved"
        self.lock = threading.Lock()
        self._ids = itertools.count(1_325_000_001)
        self._refund_ids = itertools.count(2_010_000_001)
        self._server: ThreadingHTTPServer | None = None

    # --- running ---

    def start(self) -> "MercadoPagoStandIn":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                standin._handle(self, "GET")

            def do_POST(self):
                standin._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- what a test does to a payment ---

    def fail_next(self, status: int, *, after_work: bool = False) -> None:
        """Answer the next request with `status`; `after_work`: having done it anyway (a lost
        answer, as a timeout after the payment was made looks to the caller)."""
        self.failures.append((status, after_work))

    def set(self, payment_id: str, **fields: Any) -> dict:
        with self.lock:
            payment = self.payments[str(payment_id)]
            payment.update(fields, date_last_updated=_now())
            return payment

    def approve(self, payment_id: str, **fields: Any) -> dict:
        """The payer paid the PIX."""
        return self.set(
            payment_id,
            status="approved",
            status_detail="accredited",
            date_approved=_now(),
            money_release_date=_now(),
            **fields,
        )

    def foreign_payment(self, *, reference: str, amount: Decimal, status: str) -> dict:
        """A payment on the same account that Solaris did not create."""
        with self.lock:
            payment = self._payment(
                {
                    "transaction_amount": amount,
                    "external_reference": reference,
                    "description": "other shop",
                    "payer": {"email": "x@example.com"},
                    "date_of_expiration": _now(),
                }
            )
            payment.update(status=status)
            return payment

    def confirm_refund(self, payment_id: str, refund_id: str) -> None:
        with self.lock:
            payment = self.payments[str(payment_id)]
            refund = next(r for r in payment["refunds"] if str(r["id"]) == str(refund_id))
            refund["status"] = "approved"
            self._refund_applied(payment, refund)

    def refund_from_dashboard(self, payment_id: str, amount: Decimal | None = None) -> dict:
        """Finance refunds in Mercado Pago's own panel, outside Solaris."""
        with self.lock:
            status, refund = self._refund(
                str(payment_id), {} if amount is None else {"amount": amount}
            )
            assert status == 201, refund
            return refund

    def refunds_asked(self) -> list[dict | None]:
        return [body for method, path, body in self.requests if path.endswith("/refunds")]

    def creations(self) -> list[dict]:
        return [
            body
            for method, path, body in self.requests
            if (method, path) == ("POST", "/v1/payments")
        ]

    # --- the API ---

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw, parse_float=Decimal) if raw else None
        except ValueError:
            body = None
        key = handler.headers.get("X-Idempotency-Key")
        with self.lock:
            self.requests.append((method, handler.path, body))
            if key:
                self.idempotency_keys.append(key)
            status, answer = self._answer(handler, method, body, key)
        data = json.dumps(answer, default=float).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json;charset=UTF-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(self, handler, method: str, body: dict | None, key: str | None) -> tuple[int, dict]:
        if handler.headers.get("Authorization") != f"Bearer {self.access_token}":
            return 401, _error(401, "invalid access token", "unauthorized")
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None and not failure[1]:
            return failure[0], _error(failure[0], "internal_error", "internal_error")
        path = handler.path.split("?")[0]
        if method == "POST" and path == "/v1/payments":
            status, answer = self._idempotent(path, key, lambda: self._create(body))
        elif method == "GET" and (match := re.fullmatch(r"/v1/payments/(\d+)", path)):
            payment = self.payments.get(match[1])
            status, answer = (200, payment) if payment else (404, self._not_found())
        elif method == "POST" and (match := re.fullmatch(r"/v1/payments/(\d+)/refunds", path)):
            status, answer = self._idempotent(path, key, lambda: self._refund(match[1], body))
        else:
            status, answer = 404, _error(404, "resource not found", "not_found")
        if failure is not None:
            return failure[0], _error(failure[0], "internal_error", "internal_error")
        return status, answer

    def _not_found(self) -> dict:
        return _error(404, "Payment not found", "not_found", 2000)

    def _idempotent(self, path: str, key: str | None, work) -> tuple[int, dict]:
        if not key:
            return 400, _error(400, "Header X-Idempotency-Key can't be null", "bad_request")
        if (path, key) not in self.answers:
            self.answers[(path, key)] = work()
        return self.answers[(path, key)]

    def _create(self, body: dict | None) -> tuple[int, dict]:
        if not isinstance(body, dict) or body.get("payment_method_id") != "pix":
            return 400, _error(400, "payment_method_id must be pix", "bad_request", 4020)
        if _money(body.get("transaction_amount")) is None:
            return 400, _error(400, "Invalid transaction_amount", "bad_request", 4037)
        payer = body.get("payer")
        if not isinstance(payer, dict) or "@" not in str(payer.get("email", "")):
            return 400, _error(400, "payer.email must be a valid email", "bad_request", 4050)
        try:
            datetime.fromisoformat(body["date_of_expiration"])
        except (KeyError, TypeError, ValueError):
            return 400, _error(400, "Invalid date_of_expiration", "bad_request", 4024)
        return 201, self._payment(body)

    def _payment(self, body: dict) -> dict:
        payment_id = str(next(self._ids))
        amount = Decimal(body["transaction_amount"])
        emv = (
            "00020126580014br.gov.bcb.pix0136d1f2a3b4-5c6d-4e7f-8a9b-0c1d2e3f4a5b"
            f"52040000530398654{len(str(amount)):02d}{amount}5802BR5910IA SOLARIS"
            f"6009SAO PAULO62230519mpqrinter{payment_id}6304A1B2"
        )
        payment = {
            "id": int(payment_id),
            "date_created": _now(),
            "date_approved": None,
            "date_last_updated": _now(),
            "date_of_expiration": body["date_of_expiration"],
            "money_release_date": None,
            "operation_type": "regular_payment",
            "payment_method_id": "pix",
            "payment_type_id": "bank_transfer",
            "payment_method": {"id": "pix", "type": "bank_transfer", "issuer_id": "12501"},
            "status": "pending",
            "status_detail": "pending_waiting_transfer",
            "currency_id": "BRL",
            "description": body.get("description"),
            "live_mode": False,
            "collector_id": 1234567890,
            "payer": {**PAYER, "email": body["payer"]["email"]},
            "metadata": {},
            "external_reference": body.get("external_reference"),
            "notification_url": body.get("notification_url"),
            "transaction_amount": amount,
            "transaction_amount_refunded": Decimal(0),
            "coupon_amount": 0,
            "transaction_details": {
                "net_received_amount": 0,
                "total_paid_amount": amount,
                "overpaid_amount": 0,
                "installment_amount": 0,
                "financial_institution": None,
                "transaction_id": None,
                "bank_transfer_id": None,
            },
            "installments": 1,
            "captured": True,
            "binary_mode": False,
            "refunds": [],
            "point_of_interaction": {
                "type": "OPENPLATFORM",
                "sub_type": None,
                "application_data": {"name": None, "version": None},
                "transaction_data": {
                    "qr_code": emv,
                    "qr_code_base64": PNG,
                    "ticket_url": (
                        f"https://www.mercadopago.com.br/payments/{payment_id}/ticket"
                        "?caller_id=1234567890&hash=5a1f2b3c"
                    ),
                    "transaction_id": None,
                    "bank_transfer_id": None,
                    "financial_institution": None,
                    "bank_info": {"payer": {"account_id": None, "long_name": None}},
                },
            },
        }
        self.payments[payment_id] = payment
        return payment

    def _refund(self, payment_id: str, body: dict | None) -> tuple[int, dict]:
        payment = self.payments.get(payment_id)
        if payment is None:
            return 404, self._not_found()
        if payment["status"] != "approved":
            return 400, _error(400, "Invalid payment status", "bad_request", 4040)
        left = payment["transaction_amount"] - payment["transaction_amount_refunded"]
        amount = left
        if isinstance(body, dict) and "amount" in body:
            amount = _money(body["amount"])
            if amount is None or amount > left:
                return 400, _error(400, "Invalid refund amount", "bad_request", 4039)
        refund = {
            "id": next(self._refund_ids),
            "payment_id": int(payment_id),
            "amount": amount,
            "metadata": {},
            "source": {"id": "1234567890", "name": "IA SOLARIS", "type": "collector"},
            "date_created": _now(),
            "unique_sequence_number": None,
            "refund_mode": "standard",
            "adjustment_amount": 0,
            "status": self.refund_status,
            "reason": None,
            "labels": [],
            "amount_refunded_to_payer": amount,
            "partition_details": [],
        }
        payment["refunds"].append(refund)
        if refund["status"] == "approved":
            self._refund_applied(payment, refund)
        return 201, refund

    def _refund_applied(self, payment: dict, refund: dict) -> None:
        payment["transaction_amount_refunded"] += refund["amount"]
        whole = payment["transaction_amount_refunded"] == payment["transaction_amount"]
        payment["status"] = "refunded" if whole else "approved"
        payment["status_detail"] = "refunded" if whole else "partially_refunded"
        payment["date_last_updated"] = _now()
