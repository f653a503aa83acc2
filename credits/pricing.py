"""The one place where a call's cost is computed: ceil(prompt × input + completion × output).

Weights are Decimals; the arithmetic is done on exact fractions (no rounding at any size, never a
float), and the result is an integer number of credits, rounded up.
"""

import math
from decimal import Decimal
from fractions import Fraction


def _exact(weight: Decimal | int | str) -> Fraction:
    if isinstance(weight, float):
        raise TypeError("weights are Decimal, never float")
    return Fraction(Decimal(weight))


def cost(
    *, prompt_tokens: int, completion_tokens: int, input_weight: Decimal, output_weight: Decimal
) -> int:
    if prompt_tokens < 0 or completion_tokens < 0:
        raise ValueError("token counts cannot be negative")
    return math.ceil(
        prompt_tokens * _exact(input_weight) + completion_tokens * _exact(output_weight)
    )


def max_completion_within(
    *, budget: int, prompt_tokens: int, input_weight: Decimal, output_weight: Decimal, n: int = 1
) -> int:
    """The most completion tokens per choice whose worst-case cost still fits in `budget` credits.

    cost ≤ budget ⇔ prompt × input + completion × n × output ≤ budget (budget is an integer), so the
    answer is floor((budget − prompt × input) ÷ (n × output)); negative when the prompt alone does
    not fit.
    """
    room = budget - prompt_tokens * _exact(input_weight)
    return math.floor(room / (n * _exact(output_weight)))
