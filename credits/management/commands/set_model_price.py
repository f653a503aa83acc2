from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from credits.services import model_price_set


def weight(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise CommandError(f"not a decimal weight: {value!r}") from None


class Command(BaseCommand):
    help = "Set (and activate) a model's credit weights per prompt and completion token."

    def add_arguments(self, parser):
        parser.add_argument("model")
        parser.add_argument("--input", dest="input_weight", required=True, type=weight)
        parser.add_argument("--output", dest="output_weight", required=True, type=weight)
        parser.add_argument("--max-output-tokens", type=int, default=None)
        parser.add_argument("--inactive", dest="active", action="store_false")

    def handle(
        self, *args, model, input_weight, output_weight, max_output_tokens, active, **options
    ):
        try:
            price = model_price_set(
                model=model,
                input_weight=input_weight,
                output_weight=output_weight,
                max_output_tokens=max_output_tokens,
                active=active,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        state = "active" if price.active else "inactive"
        self.stdout.write(
            f"{price.model}: input {price.input_weight}, output {price.output_weight} ({state})"
        )
