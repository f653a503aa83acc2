"""Model prices: the weights a call's tokens are charged at (credits.pricing computes the cost)."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import DecimalValidator
from django.db import transaction
from django.utils.translation import gettext as _

from credits.models import ModelPrice

_WEIGHT_FORMAT = DecimalValidator(max_digits=14, decimal_places=6)
# Placeholder weight for imported models: they stay inactive until an admin sets real weights.
IMPORTED_WEIGHT = Decimal(1)


@transaction.atomic
def model_price_set(
    *,
    model: str,
    input_weight: Decimal,
    output_weight: Decimal,
    max_output_tokens: int | None = None,
    active: bool = True,
) -> ModelPrice:
    if not model or not model.strip():
        raise ValidationError(_("The model name is required."), code="model")
    for weight in (input_weight, output_weight):
        if not isinstance(weight, Decimal) or not weight.is_finite() or weight <= 0:
            raise ValidationError(_("Weights must be greater than zero."), code="weights")
        _WEIGHT_FORMAT(weight)
    if max_output_tokens is not None and max_output_tokens < 1:
        raise ValidationError(_("The output limit must be at least 1 token."), code="max_tokens")
    price, _created = ModelPrice.objects.update_or_create(
        model=model.strip(),
        defaults={
            "input_weight": input_weight,
            "output_weight": output_weight,
            "max_output_tokens": max_output_tokens,
            "active": active,
        },
    )
    return price


@transaction.atomic
def model_prices_import(*, models: list[str]) -> list[ModelPrice]:
    """Add every model not priced yet as an inactive price (weights to be set by an admin)."""
    known = set(ModelPrice.objects.filter(model__in=models).values_list("model", flat=True))
    new = sorted({name.strip() for name in models if name.strip()} - known)
    return ModelPrice.objects.bulk_create(
        ModelPrice(
            model=name, input_weight=IMPORTED_WEIGHT, output_weight=IMPORTED_WEIGHT, active=False
        )
        for name in new
    )
