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
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from accounts.models import ApiKey, User
from accounts.services import api_key_create
from backoffice import serializers as s
from backoffice.selectors import users_with_credits
from credits.authentication import ApiKeyAuthentication
from credits.models import Purchase
from credits.selectors import account_summary, grant_already_made
from credits.services import credits_grant, purchase_confirm, purchase_request, user_create
from kernel.errors import SolarisError

ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="Invalid input; nothing was written."),
    401: OpenApiResponse(s.ErrorSerializer, description="Missing or invalid API key."),
    403: OpenApiResponse(s.ErrorSerializer, description="Not a staff key, or lacks the right."),
}
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
}


def service_error(error: ValidationError) -> SolarisError:
    code = getattr(error, "code", None)
    if code == "conflict":
        return SolarisError(
            " ".join(error.messages),
            status=409,
            code="idempotency_conflict",
            param="idempotency_key",
        )
    return SolarisError(" ".join(error.messages), param=PARAM_OF_CODE.get(code or ""))


class StaffKey(BasePermission):
    """A staff user's personal API key, holding the view's Django permission."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (isinstance(request.auth, ApiKey) and user and user.is_staff and user.is_active):
            return False
        needed = view.required_permissions.get(request.method, ())
        return user.has_perms(needed)


class Pages(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


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
    pagination_class = Pages
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
        term = request.query_params.get("search", "").strip()
        if "\x00" in term:
            raise SolarisError(_("The search must not contain NUL characters."), param="search")
        if term:
            users = users.filter(Q(email__icontains=term) | Q(name__icontains=term))
        state = request.query_params.get("state")
        if state:
            if state not in ("normal", "alert", "blocked"):
                raise SolarisError(_("Unknown state: %(state)s.") % {"state": state}, param="state")
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
        responses={200: s.UserSummarySerializer, 404: s.ErrorSerializer, **ERRORS},
    )
    def get(self, request, user_id: int):
        return Response(user_summary(get_object_or_404(User, pk=user_id)))


class GrantCreate(AdminApiView):
    required_permissions = {"POST": ("backoffice.grant_credits",)}
    serializer_class = s.GrantCreateSerializer

    @extend_schema(
        summary="Grant credits (idempotent by key)",
        parameters=[IDEMPOTENCY_HEADER],
        request=s.GrantCreateSerializer,
        responses={
            201: s.GrantOutSerializer,
            200: OpenApiResponse(
                s.GrantOutSerializer, description="Same key again: the first grant."
            ),
            409: OpenApiResponse(
                s.ErrorSerializer, description="Key reused for a different grant."
            ),
            **ERRORS,
        },
    )
    def post(self, request):
        data = self.parse(s.GrantCreateSerializer)
        key = f"api:{data['idempotency_key']}"
        replay = grant_already_made(idempotency_key=key)
        try:
            grant = credits_grant(
                user=data["user"],
                amount=data["amount"],
                idempotency_key=key,
                source=data["source"],
                expires_at=data["expires_at"],
                reason=data["reason"],
                created_by=request.user,
            )
        except ValidationError as error:
            raise service_error(error) from None
        code = status.HTTP_200_OK if replay else status.HTTP_201_CREATED
        return Response(s.GrantOutSerializer(grant).data, status=code)


class PurchaseCreate(AdminApiView):
    required_permissions = {"POST": ("backoffice.confirm_purchase",)}
    serializer_class = s.PurchaseCreateSerializer

    @extend_schema(
        summary="Record a purchase request (idempotent by key)",
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
            purchase = purchase_request(
                user=data["user"],
                idempotency_key=data["idempotency_key"],
                package=data["package"],
                credits=data["credits"],
                price_cents=data["price_cents"],
            )
        except ValidationError as error:
            raise service_error(error) from None
        code = status.HTTP_200_OK if replay else status.HTTP_201_CREATED
        return Response(s.PurchaseSerializer(purchase).data, status=code)


class PurchaseConfirm(AdminApiView):
    required_permissions = {"POST": ("backoffice.confirm_purchase",)}
    serializer_class = s.PurchaseConfirmSerializer

    @extend_schema(
        summary="Confirm payment: grants the credits (confirming twice grants once)",
        request=s.PurchaseConfirmSerializer,
        responses={200: s.PurchaseSerializer, 404: s.ErrorSerializer, **ERRORS},
    )
    def post(self, request, purchase_id: int):
        purchase = get_object_or_404(Purchase, pk=purchase_id)
        data = self.parse(s.PurchaseConfirmSerializer)
        try:
            purchase = purchase_confirm(
                purchase=purchase,
                confirmed_by=request.user,
                payment_reference=data["payment_reference"],
            )
        except ValidationError as error:
            raise SolarisError(" ".join(error.messages), code="purchase_not_confirmable") from None
        return Response(s.PurchaseSerializer(purchase).data)


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
