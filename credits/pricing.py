"""The one place where a call's cost is computed: ceil(prompt × input + completion × output).

Decimal arithmetic only; the result is an integer number of credits, rounded up.
"""

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal


def _decimal(weight: Decimal | int | str) -> Decimal:
    if isinstance(weight, float):
        raise TypeError("weights are Decimal, never float")
    return Decimal(weight)


def cost(
    *, prompt_tokens: int, completion_tokens: int, input_weight: Decimal, output_weight: Decimal
) -> int:
    if prompt_tokens < 0 or completion_tokens < 0:
        raise ValueError("token counts cannot be negative")
    exact = prompt_tokens * _decimal(input_weight) + completion_tokens * _decimal(output_weight)
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


def max_completion_within(
    *, budget: int, prompt_tokens: int, input_weight: Decimal, output_weight: Decimal, n: int = 1
) -> int:
    """The most completion tokens per choice whose worst-case cost still fits in `budget` credits.

    cost ≤ budget ⇔ prompt × input + completion × n × output ≤ budget (budget is an integer), so the
    answer is floor((budget − prompt × input) ÷ (n × output)); negative when the prompt alone does
    not fit.
    """
    room = Decimal(budget) - prompt_tokens * _decimal(input_weight)
    per_token = Decimal(n) * _decimal(output_weight)
    tokens = int((room / per_token).to_integral_value(rounding=ROUND_FLOOR))
    # Division is rounded to the context's precision; step back if that rounding went up.
    while (
        tokens >= 0
        and cost(
            prompt_tokens=prompt_tokens,
            completion_tokens=tokens * n,
            input_weight=input_weight,
            output_weight=output_weight,
        )
        > budget
    ):
        tokens -= 1
    return tokens
