"""Admin REST API under /api/v1/admin/ (docs/admin.md): automation with a staff user's API key.

Each view parses input with a serializer, calls one service and renders the result; errors come
out in the OpenAI shape (kernel/errors.py) and a refused request writes nothing.
"""

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from accounts.models import ApiKey, User
from accounts.services import api_key_create, user_reactivate, user_suspend
from backoffice import api_params as params
from backoffice import serializers as s
from backoffice.models import GrantRequest
from backoffice.roles import may_change_account
from backoffice.selectors import purchases_open, users_with_credits
from backoffice.services import (
    grant_request_approve,
    grant_request_reject,
    staff_grant,
    staff_history_log,
    staff_purchase_cancel,
    staff_purchase_confirm,
    staff_purchase_refund,
    staff_purchase_request,
)
from credits.authentication import ApiKeyAuthentication
from credits.models import Purchase
from credits.selectors import account_summary, grant_already_made
from credits.services import user_create
from kernel.errors import SolarisError
from payments.services import PaymentUnavailable

ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="Invalid input; nothing was written."),
    401: OpenApiResponse(s.ErrorSerializer, description="Missing or invalid API key."),
    403: OpenApiResponse(
        s.ErrorSerializer,
        description="Not a staff key, lacks the right, or a guard rail refuses it "
        "(own_account, second_approver_required).",
    ),
}
NOT_FOUND = {404: OpenApiResponse(s.ErrorSerializer, description="No such object.")}
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Alternative to the body's idempotency_key.",
)
# Service error codes that name the request field at fault.
PARAM_OF_CODE = {
    "amount": "amount",
    "expires_at": "expires_at",
    "plan": "plan",
    "price": "price_cents",
    "package": "package",
    "idempotency_key": "idempotency_key",
    "full": "full",
}


# Guard rails (backoffice.services) refuse with these codes: the key lacks no right, the act is
# not allowed to anyone in its place.
FORBIDDEN_CODES = {
    "own_account": "own_account",
    "second_approver": "second_approver_required",
    "permission": "permission_denied",
}


def service_error(
    error: ValidationError, *, params_of: dict[str, str] | None = None
) -> SolarisError:
    code = getattr(error, "code", None) or ""
    message = " ".join(error.messages)
    if code == "conflict":
        return SolarisError(
            message, status=409, code="idempotency_conflict", param="idempotency_key"
        )
    if code in FORBIDDEN_CODES:
        return SolarisError(
            message, status=403, code=FORBIDDEN_CODES[code], type="permission_error", param="user"
        )
    if code == "duplicate":
        return SolarisError(message, status=409, code="already_exists")
    if code == "pending_purchase":
        return SolarisError(
            message, status=409, code="pending_purchase", param="acknowledge_pending_purchase"
        )
    return SolarisError(message, param={**PARAM_OF_CODE, **(params_of or {})}.get(code))


def changeable_user(request, user_id: int) -> User:
    """The user a staff member is about to change; only a superuser changes other staff."""
    user = get_object_or_404(User, pk=user_id)
    if not may_change_account(actor=request.user, user=user):
        raise SolarisError(
            _("Only a superuser changes another staff member's account."),
            status=403,
            code="permission_denied",
            type="permission_error",
            param="user",
        )
    return user


class StaffKey(BasePermission):
    """A staff user's personal API key, holding the view's Django permission."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (isinstance(request.auth, ApiKey) and user and user.is_staff and user.is_active):
            return False
        needed = view.required_permissions.get(request.method, ())
        return user.has_perms(needed)


class AdminApiView(GenericAPIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [StaffKey]
    required_permissions: dict[str, tuple[str, ...]] = {}

    def parse(self, serializer_class):
        data = request_data = self.request.data
        if not isinstance(request_data, dict):
            raise SolarisError(_("The body must be a JSON object."))
        header = self.request.headers.get("Idempotency-Key")
        if header and issubclass(serializer_class, s.IdempotentSerializer):
            data = {**request_data, "idempotency_key": request_data.get("idempotency_key", header)}
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def user_summary(user: User) -> dict:
    summary = account_summary(user_id=user.pk, with_grants=True)
    return s.UserSummarySerializer(
        {
            "id": user.pk,
            "email": user.email,
            "name": user.name,
            "language": user.language,
            "is_suspended": user.is_suspended,
            "plan": summary.plan.slug if summary.plan else None,
            **{
                name: getattr(summary, name)
                for name in [
                    "available",
                    "balance",
                    "held",
                    "debt",
                    "granted",
                    "used",
                    "used_percent",
                    "state",
                    "renews_at",
                    "grants",
                ]
            },
        }
    ).data


class UserListCreate(AdminApiView):
    required_permissions = {"GET": ("accounts.view_user",), "POST": ("accounts.add_user",)}
    pagination_class = params.Pages
    serializer_class = s.UserListItemSerializer

    @extend_schema(
        summary="List users with their credits",
        parameters=[
            OpenApiParameter("search", str, description="Part of the e-mail or name."),
            OpenApiParameter("state", str, enum=["normal", "alert", "blocked"]),
        ],
        responses={200: s.UserListItemSerializer(many=True), **ERRORS},
    )
    def get(self, request):
        users = users_with_credits(User.objects.select_related("subscription__plan"))
        term = params.text(request, "search")
        if term:
            users = users.filter(Q(email__icontains=term) | Q(name__icontains=term))
        state = params.choice(request, "state", ["normal", "alert", "blocked"])
        if state:
            users = users.filter(account__isnull=False, credit_state=state)  # type: ignore[misc]
        page = self.paginate_queryset(users.order_by("email"))
        return self.get_paginated_response(s.UserListItemSerializer(page, many=True).data)

    @extend_schema(
        summary="Create a user on a plan",
        request=s.UserCreateSerializer,
        responses={201: s.UserSummarySerializer, **ERRORS},
    )
    def post(self, request):
        data = self.parse(s.UserCreateSerializer)
        try:
            user = user_create(
                email=data["email"],
                name=data["name"],
                language=data["language"],
                password=data["password"],
                plan_slug=data["plan"],
            )
        except ValidationError as error:
            param = "email" if getattr(error, "code", "") in ("duplicate", "invalid") else None
            raise SolarisError(" ".join(error.messages), param=param or "plan") from None
        return Response(user_summary(user), status=status.HTTP_201_CREATED)


class UserDetail(AdminApiView):
    required_permissions = {"GET": ("accounts.view_user",)}
    serializer_class = s.UserSummarySerializer

    @extend_schema(
        summary="A user's credit summary",
        responses={200: s.UserSummarySerializer, **NOT_FOUND, **ERRORS},
    )
    def get(self, request, user_id: int):
        return Response(user_summary(get_object_or_404(User, pk=user_id)))


class UserSuspension(AdminApiView):
    """Suspend or reactivate, with a reason written to the user's admin history."""

    required_permissions = {"POST": ("accounts.change_user",)}
    serializer_class = s.ReasonSerializer
    change = staticmethod(user_suspend)

    def history(self, reason: str) -> str:
        return _("Suspended: %(reason)s") % {"reason": reason}

    @extend_schema(
        summary="Suspend a user: their calls are refused until reactivated",
        request=s.ReasonSerializer,
        responses={200: s.UserSummarySerializer, **NOT_FOUND, **ERRORS},
    )
    def post(self, request, user_id: int):
        user = changeable_user(request, user_id)
        data = self.parse(s.ReasonSerializer)
        if self.change(user=user):
            staff_history_log(actor=request.user, obj=user, message=self.history(data["reason"]))
        return Response(user_summary(user))


class UserReactivation(UserSuspension):
    change = staticmethod(user_reactivate)

    def history(self, reason: str) -> str:
        return _("Reactivated: %(reason)s") % {"reason": reason}

    @extend_schema(
        summary="Reactivate a suspended user",
        request=s.ReasonSerializer,
        responses={200: s.UserSummarySerializer, **NOT_FOUND, **ERRORS},
    )
    def post(self, request, user_id: int):
        return super().post(request, user_id)


class GrantCreate(AdminApiView):
    required_permissions = {"POST": ("backoffice.grant_credits",)}
    serializer_class = s.GrantCreateSerializer

    @extend_schema(
        summary="Grant credits (idempotent by key)",
        description="Above SOLARIS_GRANT_APPROVAL_ABOVE credits nothing is granted yet: the "
        "answer is 202 with a pending grant request that another staff member approves. "
        "Nobody grants to their own account (403 own_account). While the user has a purchase "
        "waiting for payment the answer is 409 pending_purchase (the purchase, once paid, would "
        "grant the same money again) unless acknowledge_pending_purchase is true.",
        parameters=[IDEMPOTENCY_HEADER],
        request=s.GrantCreateSerializer,
        responses={
            201: s.GrantOutSerializer,
            200: OpenApiResponse(
                s.GrantOutSerializer, description="Same key again: the first grant."
            ),
            202: OpenApiResponse(
                s.GrantRequestSerializer,
                description="Above the approval threshold: a grant request, pending.",
            ),
            409: OpenApiResponse(
                s.ErrorSerializer,
                description="Key reused for a different grant (idempotency_conflict), or a "
                "purchase waits for payment (pending_purchase).",
            ),
            **ERRORS,
        },
    )
    def post(self, request):
        data = self.parse(s.GrantCreateSerializer)
        key = f"api:{data['idempotency_key']}"
        replay = grant_already_made(idempotency_key=key)
        acknowledged = (
            {purchase.pk for purchase in purchases_open(user_id=data["user"].pk)}
            if data["acknowledge_pending_purchase"]
            else set()
        )
        try:
            result = staff_grant(
                actor=request.user,
                user=data["user"],
                amount=data["amount"],
                idempotency_key=key,
                source=data["source"],
                expires_at=data["expires_at"],
                reason=data["reason"],
                acknowledged_purchases=acknowledged,
            )
        except ValidationError as error:
            raise service_error(error) from None
        if isinstance(result, GrantRequest):
            body = s.GrantRequestSerializer(result).data
            return Response(body, status=status.HTTP_202_ACCEPTED)
        code = status.HTTP_200_OK if replay else status.HTTP_201_CREATED
        return Response(s.GrantOutSerializer(result).data, status=code)


class GrantRequestList(AdminApiView):
    required_permissions = {"GET": ("backoffice.view_grantrequest",)}
    pagination_class = params.Cursor
    serializer_class = s.GrantRequestSerializer

    @extend_schema(
        summary="Grant requests waiting for approval (and decided ones), newest first",
        parameters=[
            OpenApiParameter("status", str, enum=GrantRequest.Status.values),
            OpenApiParameter("user", str, description="User id or e-mail."),
        ],
        responses={200: s.GrantRequestSerializer(many=True), **ERRORS},
    )
    def get(self, request):
        requests = GrantRequest.objects.all()
        state = params.choice(request, "status", GrantRequest.Status.values)
        if state:
            requests = requests.filter(status=state)
        user = params.user(request)
        if user:
            requests = requests.filter(user=user)
        page = self.paginate_queryset(requests)
        return self.get_paginated_response(s.GrantRequestSerializer(page, many=True).data)


class GrantRequestApprove(AdminApiView):
    required_permissions = {"POST": ("backoffice.grant_credits",)}
    serializer_class = s.GrantRequestSerializer

    @extend_schema(
        summary="Approve a grant request: the credits are granted, once",
        description="Another staff member than the requester, and not the user the credits are "
        "for. Approving an approved request again changes nothing.",
        request=None,
        responses={
            200: s.GrantRequestSerializer,
            409: OpenApiResponse(s.ErrorSerializer, description="Already rejected."),
            **NOT_FOUND,
            **ERRORS,
        },
    )
    def post(self, request, request_id: int):
        grant_request = get_object_or_404(GrantRequest, pk=request_id)
        try:
            decided = grant_request_approve(grant_request=grant_request, approver=request.user)
        except ValidationError as error:
            raise _decision_error(error) from None
        staff_history_log(
            actor=request.user, obj=decided, message=_("Approved: the credits were granted.")
        )
        return Response(s.GrantRequestSerializer(decided).data)


class GrantRequestReject(AdminApiView):
    required_permissions = {"POST": ("backoffice.grant_credits",)}
    serializer_class = s.RejectSerializer

    @extend_schema(
        summary="Reject a grant request (nothing is granted)",
        request=s.RejectSerializer,
        responses={
            200: s.GrantRequestSerializer,
            409: OpenApiResponse(s.ErrorSerializer, description="Already approved."),
            **NOT_FOUND,
            **ERRORS,
        },
    )
    def post(self, request, request_id: int):
        grant_request = get_object_or_404(GrantRequest, pk=request_id)
        data = self.parse(s.RejectSerializer)
        try:
            decided = grant_request_reject(
                grant_request=grant_request, decided_by=request.user, note=data["note"]
            )
        except ValidationError as error:
            raise _decision_error(error) from None
        staff_history_log(actor=request.user, obj=decided, message=_("Rejected."))
        return Response(s.GrantRequestSerializer(decided).data)


def _decision_error(error: ValidationError) -> SolarisError:
    if getattr(error, "code", None) == "status":
        return SolarisError(" ".join(error.messages), status=409, code="grant_request_closed")
    return service_error(error)


class PurchaseListCreate(AdminApiView):
    required_permissions = {
        "GET": ("credits.view_purchase",),
        "POST": ("backoffice.confirm_purchase",),
    }
    pagination_class = params.Cursor
    serializer_class = s.PurchaseCreateSerializer

    @extend_schema(
        summary="Purchases, newest first (status=requested: the queue to confirm)",
        parameters=[
            params.USER,
            OpenApiParameter("status", str, enum=Purchase.Status.values),
            *params.PERIOD,
        ],
        responses={200: s.PurchaseSerializer(many=True), **ERRORS},
    )
    def get(self, request):
        purchases = Purchase.objects.all()
        user = params.user(request)
        if user is not None:
            purchases = purchases.filter(user=user)
        state = params.choice(request, "status", Purchase.Status.values)
        if state:
            purchases = purchases.filter(status=state)
        page = self.paginate_queryset(params.in_period(purchases, request))
        return self.get_paginated_response(s.PurchaseSerializer(page, many=True).data)

    @extend_schema(
        summary="Record a purchase request (idempotent by key)",
        description="Not for the caller's own account (403 own_account). A custom amount has a "
        "price of at least 1 cent, at most 1 000 000 000 credits and R$ 1 000 000; while grants "
        "need approval it cannot exceed SOLARIS_GRANT_APPROVAL_ABOVE credits.",
        parameters=[IDEMPOTENCY_HEADER],
        request=s.PurchaseCreateSerializer,
        responses={
            201: s.PurchaseSerializer,
            200: s.PurchaseSerializer,
            409: s.ErrorSerializer,
            **ERRORS,
        },
    )
    def post(self, request):
        data = self.parse(s.PurchaseCreateSerializer)
        replay = Purchase.objects.filter(idempotency_key=data["idempotency_key"]).exists()
        try:
            purchase = staff_purchase_request(
                actor=request.user,
                user=data["user"],
                idempotency_key=data["idempotency_key"],
                package=data["package"],
                credits=data["credits"],
                price_cents=data["price_cents"],
            )
        except ValidationError as error:
            raise service_error(error, params_of={"amount": "credits"}) from None
        code = status.HTTP_200_OK if replay else status.HTTP_201_CREATED
        return Response(s.PurchaseSerializer(purchase).data, status=code)


class PurchaseConfirm(AdminApiView):
    required_permissions = {"POST": ("backoffice.confirm_purchase",)}
    serializer_class = s.PurchaseConfirmSerializer

    @extend_schema(
        summary="Confirm payment: grants the credits (confirming twice grants once)",
        request=s.PurchaseConfirmSerializer,
        responses={200: s.PurchaseSerializer, **NOT_FOUND, **ERRORS},
    )
    def post(self, request, purchase_id: int):
        purchase = get_object_or_404(Purchase, pk=purchase_id)
        data = self.parse(s.PurchaseConfirmSerializer)
        try:
            purchase = staff_purchase_confirm(
                actor=request.user,
                purchase=purchase,
                payment_reference=data["payment_reference"],
            )
        except ValidationError as error:
            # Not in a confirmable state, or paid online (its payment confirms it, never a person).
            if getattr(error, "code", None) in ("status", "online"):
                raise SolarisError(
                    " ".join(error.messages), code="purchase_not_confirmable"
                ) from None
            raise service_error(error) from None
        return Response(s.PurchaseSerializer(purchase).data)


class PurchaseCancel(AdminApiView):
    required_permissions = {"POST": ("backoffice.cancel_purchase",)}
    serializer_class = s.CancelSerializer

    @extend_schema(
        summary="Cancel a purchase not yet credited (cancelling twice changes nothing)",
        description="Not a PIX purchase whose charge can still be paid (409 "
        "pix_charge_pending): it is cancelled by itself once it expires. The reason, if any, "
        "goes to the purchase's admin history.",
        request=s.CancelSerializer,
        responses={
            200: s.PurchaseSerializer,
            409: OpenApiResponse(s.ErrorSerializer, description="Its PIX can still be paid."),
            **NOT_FOUND,
            **ERRORS,
        },
    )
    def post(self, request, purchase_id: int):
        purchase = get_object_or_404(Purchase, pk=purchase_id)
        data = self.parse(s.CancelSerializer)
        try:
            purchase = staff_purchase_cancel(actor=request.user, purchase=purchase)
        except ValidationError as error:
            message = " ".join(error.messages)
            if getattr(error, "code", None) == "pix_pending":
                raise SolarisError(message, status=409, code="pix_charge_pending") from None
            raise SolarisError(message, code="purchase_not_cancellable") from None
        history = _("Cancelled: %(reason)s") % data if data["reason"] else _("Cancelled.")
        staff_history_log(actor=request.user, obj=purchase, message=history)
        return Response(s.PurchaseSerializer(purchase).data)


REFUND_ERRORS = {
    # code: (status, API code, param)
    "status": (400, "purchase_not_refundable", None),
    "held": (409, "credits_in_use", None),
    "open": (409, "refund_in_progress", None),
    "nothing_left": (400, "nothing_to_refund", "full"),
    "refused": (502, "payment_refused", None),
    "provider": (503, "payment_provider_not_configured", None),
}


class PurchaseRefund(AdminApiView):
    required_permissions = {"POST": ("backoffice.refund_purchase",)}
    serializer_class = s.RefundSerializer

    @extend_schema(
        summary="Refund a credited purchase",
        description="A PIX purchase: Mercado Pago gives the money back first, pro rata to the "
        "credits not yet spent (or the whole price with full: true, the spent credits then "
        "booked as debt); its credits are taken back once Mercado Pago confirms — 200 with "
        "refund.status booked, or 202 while Mercado Pago or calls in progress make it wait "
        "(reconciliation books it). A manual purchase: what is left of its credits is taken "
        "back now (full is refused); 409 credits_in_use while calls in progress hold them.",
        request=s.RefundSerializer,
        responses={
            200: s.PurchaseRefundedSerializer,
            202: OpenApiResponse(
                s.PurchaseRefundedSerializer,
                description="Asked of Mercado Pago; the credits are taken back once it confirms.",
            ),
            409: OpenApiResponse(
                s.ErrorSerializer,
                description="Credits held by open calls, or a refund already in progress.",
            ),
            502: OpenApiResponse(s.ErrorSerializer, description="Mercado Pago refused it."),
            503: OpenApiResponse(s.ErrorSerializer, description="Mercado Pago did not answer."),
            **NOT_FOUND,
            **ERRORS,
        },
    )
    def post(self, request, purchase_id: int):
        purchase = get_object_or_404(Purchase, pk=purchase_id)
        data = self.parse(s.RefundSerializer)
        try:
            done = staff_purchase_refund(
                actor=request.user, purchase=purchase, reason=data["reason"], full=data["full"]
            )
        except ValidationError as error:
            code = getattr(error, "code", None) or ""
            if code in REFUND_ERRORS:
                status_code, api_code, param = REFUND_ERRORS[code]
                raise SolarisError(
                    " ".join(error.messages),
                    status=status_code,
                    code=api_code,
                    param=param,
                    type="api_error" if status_code >= 500 else None,
                ) from None
            raise service_error(error) from None
        except PaymentUnavailable:
            raise SolarisError(
                _(
                    "Mercado Pago did not answer. The refund is asked again by itself within a "
                    "minute, with the same key; nothing is taken back before it confirms."
                ),
                status=503,
                code="payment_provider_unavailable",
                type="api_error",
                headers={"Retry-After": "60"},
            ) from None
        refund = done.payment_refund
        staff_history_log(
            actor=request.user,
            obj=done.purchase,
            message=_("Refunded: %(reason)s") % {"reason": data["reason"]},
        )
        body = s.PurchaseRefundedSerializer(done.purchase, context={"refund": refund}).data
        waiting = refund is not None and refund.status != refund.Status.BOOKED
        return Response(body, status=status.HTTP_202_ACCEPTED if waiting else status.HTTP_200_OK)


class ApiKeyCreate(AdminApiView):
    required_permissions = {"POST": ("accounts.add_apikey",)}
    serializer_class = s.ApiKeyCreateSerializer

    @extend_schema(
        summary="Create a personal API key for a user (the plaintext is returned once)",
        request=s.ApiKeyCreateSerializer,
        responses={201: s.ApiKeyCreatedSerializer, **ERRORS},
    )
    def post(self, request):
        data = self.parse(s.ApiKeyCreateSerializer)
        # A key for another staff member would let its holder act as them.
        if not may_change_account(actor=request.user, user=data["user"]):
            raise SolarisError(
                _("Only a superuser creates keys for another staff member."),
                status=403,
                code="permission_denied",
                type="permission_error",
                param="user",
            )
        key, raw = api_key_create(user=data["user"], name=data["name"])
        body = {
            "id": key.pk,
            "user": key.user_id,
            "name": key.name,
            "prefix": key.prefix,
            "key": raw,
            "created_at": key.created_at,
        }
        return Response(s.ApiKeyCreatedSerializer(body).data, status=status.HTTP_201_CREATED)
