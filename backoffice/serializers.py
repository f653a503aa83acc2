from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import User
from backoffice.models import GrantRequest
from credits.models import CreditPackage, Grant, LedgerEntry, ModelPrice, Plan, Purchase
from credits.selectors import member_plan
from payments.models import PaymentRefund
from proxy.models import CallRecord

MAX_CREDITS = 10**12
MAX_PRICE_CENTS = 2**31 - 1  # Purchase.price_cents is a 32-bit column


class TextField(serializers.CharField):
    """A JSON string, not a number turned into one."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.STR)
class UserField(serializers.Field):
    """A user given by id or by e-mail."""

    default_error_messages = {
        "unknown": _("Unknown user: %(value)s."),
        "invalid": _("Give a user id or e-mail."),
    }

    def to_internal_value(self, data):
        value = str(data).strip() if isinstance(data, str | int) else ""
        if isinstance(data, bool) or not value or "\x00" in value or len(value) > 254:
            raise serializers.ValidationError(self.error_messages["invalid"])
        found = (
            User.objects.filter(pk=int(value)).first()
            if value.isascii() and value.isdigit() and len(value) < 19
            else User.objects.filter(email__iexact=value).first()
        )
        if found is None:
            raise serializers.ValidationError(self.error_messages["unknown"] % {"value": value})
        return found

    def to_representation(self, value):
        return value.pk


class GrantOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Grant
        fields = ["id", "source", "amount", "remaining", "expires_at", "reason", "created_at"]


class UserSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()
    language = serializers.CharField()
    is_suspended = serializers.BooleanField()
    plan = serializers.CharField(allow_null=True)
    available = serializers.IntegerField()
    balance = serializers.IntegerField()
    held = serializers.IntegerField()
    debt = serializers.IntegerField()
    granted = serializers.IntegerField()
    used = serializers.IntegerField()
    used_percent = serializers.DecimalField(max_digits=7, decimal_places=2)
    state = serializers.ChoiceField(choices=["normal", "alert", "blocked"])
    renews_at = serializers.DateTimeField(allow_null=True)
    grants = GrantOutSerializer(many=True)


class UserListItemSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    email = serializers.EmailField()
    name = serializers.CharField()
    is_suspended = serializers.BooleanField()
    plan = serializers.SerializerMethodField()
    available = serializers.IntegerField(source="credits_available")
    used_percent = serializers.SerializerMethodField()
    state = serializers.CharField(source="credit_state")
    last_call_at = serializers.DateTimeField(allow_null=True)

    def get_plan(self, user) -> str | None:
        plan = member_plan(subscription=getattr(user, "subscription", None))
        return plan.slug if plan else None

    def get_used_percent(self, user) -> str:
        from backoffice.selectors import used_percent_of

        return str(used_percent_of(user.used_bp))


class UserCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    language = serializers.ChoiceField(choices=User.Language.choices, default=User.Language.PT_BR)
    plan = serializers.SlugField(required=False, allow_null=True, default=None)
    password = serializers.CharField(
        required=False, allow_null=True, default=None, write_only=True, min_length=8
    )


class IdempotentSerializer(serializers.Serializer):
    idempotency_key = serializers.CharField(
        max_length=150,
        help_text=_(
            "Any unique string: the same key twice acts once (or the Idempotency-Key header)."
        ),
    )


class GrantCreateSerializer(IdempotentSerializer):
    user = UserField(help_text=_("User id or e-mail."))
    amount = serializers.IntegerField(min_value=1, max_value=MAX_CREDITS)
    reason = serializers.CharField(max_length=300)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    source = serializers.ChoiceField(  # type: ignore[assignment]  # the API field is "source"
        choices=[Grant.Source.MANUAL, Grant.Source.PROMO], default=Grant.Source.MANUAL
    )
    acknowledge_pending_purchase = serializers.BooleanField(
        default=False,
        help_text=_(
            "Required (true) while the user has a purchase waiting for payment: that purchase, "
            "once paid, grants its credits too."
        ),
    )

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError(_("The expiry must be in the future."))
        return value


class PurchaseCreateSerializer(IdempotentSerializer):
    user = UserField(help_text=_("User id or e-mail."))
    package = serializers.PrimaryKeyRelatedField(
        queryset=CreditPackage.objects.all(), required=False, allow_null=True, default=None
    )
    credits = serializers.IntegerField(
        min_value=1, max_value=MAX_CREDITS, required=False, allow_null=True, default=None
    )
    price_cents = serializers.IntegerField(
        min_value=0, max_value=MAX_PRICE_CENTS, required=False, allow_null=True, default=None
    )

    def validate(self, attrs):
        if attrs["package"] is None and (attrs["credits"] is None or attrs["price_cents"] is None):
            raise serializers.ValidationError(
                {"package": _("Give a package, or credits and price_cents.")}
            )
        if attrs["package"] is not None and attrs["credits"] is not None:
            raise serializers.ValidationError(
                {"credits": _("Give either a package or credits, not both.")}
            )
        return attrs


class PurchaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Purchase
        fields = [
            "id",
            "user",
            "package",
            "credits",
            "price_cents",
            "validity_days",
            "method",
            "status",
            "payment_reference",
            "idempotency_key",
            "created_at",
            "paid_at",
            "confirmed_by",
        ]


class PurchaseConfirmSerializer(serializers.Serializer):
    payment_reference = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )


class ApiKeyCreateSerializer(serializers.Serializer):
    user = UserField(help_text=_("User id or e-mail."))
    name = serializers.CharField(max_length=100, default="default")


class ApiKeyCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    key = serializers.CharField(help_text=_("The plaintext key: shown this once only."))
    created_at = serializers.DateTimeField()


class GrantRequestSerializer(serializers.ModelSerializer):
    class Meta:
        model = GrantRequest
        fields = [
            "id",
            "user",
            "amount",
            "source",
            "reason",
            "expires_at",
            "status",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "decision_note",
            "grant",
        ]


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200)


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class RefundSerializer(ReasonSerializer):
    full = serializers.BooleanField(
        default=False,
        help_text=_(
            "PIX purchases only: give back the whole price and take back every credit (the "
            "spent part as debt). Off: pro rata to the credits not yet spent."
        ),
    )


class PaymentRefundSerializer(serializers.ModelSerializer):
    credits = serializers.SerializerMethodField(help_text=_("The credits taken back."))

    class Meta:
        model = PaymentRefund
        fields = [
            "id",
            "status",
            "amount_cents",
            "full",
            "credits",
            "reason",
            "provider_refund_id",
            "created_at",
            "confirmed_at",
            "booked_at",
        ]

    def get_credits(self, refund) -> int:
        return refund.payment.purchase.credits if refund.full else refund.credits_quoted


class PurchaseRefundedSerializer(PurchaseSerializer):
    refund = serializers.SerializerMethodField(
        help_text=_("A PIX purchase's refund through Mercado Pago; null for a manual purchase.")
    )

    class Meta(PurchaseSerializer.Meta):
        fields = [*PurchaseSerializer.Meta.fields, "refund"]

    @extend_schema_field(PaymentRefundSerializer(allow_null=True))
    def get_refund(self, purchase) -> dict | None:
        refund = self.context.get("refund")
        return PaymentRefundSerializer(refund).data if refund is not None else None


class RejectSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=300)


class PlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = [
            "id",
            "slug",
            "name",
            "monthly_allowance",
            "all_models",
            "allowed_models",
            "requests_per_minute",
            "default_max_tokens",
            "is_default",
            "active",
            "created_at",
        ]


class PlanChangeSerializer(serializers.Serializer):
    """Types only: every rule a plan keeps is checked by credits.services.plan_create/_update."""

    name = TextField(max_length=1000, required=False)
    monthly_allowance = serializers.IntegerField(required=False)
    all_models = serializers.BooleanField(required=False)
    allowed_models = serializers.ListField(
        child=TextField(max_length=1000), max_length=10_000, required=False
    )
    requests_per_minute = serializers.IntegerField(required=False)
    default_max_tokens = serializers.IntegerField(required=False)
    is_default = serializers.BooleanField(required=False)
    active = serializers.BooleanField(required=False)


class PlanCreateSerializer(PlanChangeSerializer):
    slug = TextField(max_length=1000)
    name = TextField(max_length=1000)


class ModelPriceSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelPrice
        fields = [
            "model",
            "input_weight",
            "output_weight",
            "max_output_tokens",
            "active",
            "updated_at",
        ]


class ModelPriceChangeSerializer(serializers.Serializer):
    input_weight = serializers.DecimalField(max_digits=14, decimal_places=6, required=False)
    output_weight = serializers.DecimalField(max_digits=14, decimal_places=6, required=False)
    max_output_tokens = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, required=False, allow_null=True
    )
    active = serializers.BooleanField(required=False)


class ModelPriceCreateSerializer(ModelPriceChangeSerializer):
    model = TextField(max_length=200)
    input_weight = serializers.DecimalField(max_digits=14, decimal_places=6)
    output_weight = serializers.DecimalField(max_digits=14, decimal_places=6)
    active = serializers.BooleanField(default=True)


class LedgerEntryOutSerializer(serializers.ModelSerializer):
    user = serializers.IntegerField(source="account_id")
    user_email = serializers.EmailField(source="account.user.email")
    source = serializers.CharField(  # type: ignore[assignment]  # the API field is "source"
        source="grant.source", allow_null=True, default=None
    )
    request_id = serializers.CharField(source="hold.request_id", allow_null=True, default=None)
    model = serializers.CharField(source="hold.model", allow_null=True, default=None)
    created_by_email = serializers.EmailField(
        source="created_by.email", allow_null=True, default=None
    )

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "created_at",
            "user",
            "user_email",
            "kind",
            "amount",
            "balance_after",
            "source",
            "grant",
            "purchase",
            "request_id",
            "model",
            "reason",
            "flagged",
            "created_by",
            "created_by_email",
        ]


class CallOutSerializer(serializers.ModelSerializer):
    user_email = serializers.EmailField(source="user.email", allow_null=True, default=None)

    class Meta:
        model = CallRecord
        fields = [
            "id",
            "request_id",
            "created_at",
            "user",
            "user_email",
            "model",
            "stream",
            "prompt_tokens",
            "completion_tokens",
            "credits",
            "held",
            "status_code",
            "end_reason",
            "error_code",
            "duration_ms",
            "conversation_id",
        ]


class ErrorDetailSerializer(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField()
    code = serializers.CharField()
    param = serializers.CharField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
