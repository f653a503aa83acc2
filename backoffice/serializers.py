from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import User
from credits.models import CreditPackage, Grant, Purchase
from credits.selectors import member_plan

MAX_CREDITS = 10**12


@extend_schema_field(OpenApiTypes.STR)
class UserField(serializers.Field):
    """A user given by id or by e-mail."""

    default_error_messages = {"unknown": _("Unknown user: %(value)s.")}

    def to_internal_value(self, data):
        value = str(data).strip()
        found = (
            User.objects.filter(pk=int(value)).first()
            if value.isdigit() and len(value) < 19
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
        min_value=0, required=False, allow_null=True, default=None
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


class ErrorDetailSerializer(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField()
    code = serializers.CharField()
    param = serializers.CharField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
