from decimal import Decimal

import pytest

from credits.pricing import cost, max_completion_within


def test_cost_is_exact_for_integer_weights():
    assert (
        cost(
            prompt_tokens=10,
            completion_tokens=20,
            input_weight=Decimal(1),
            output_weight=Decimal(2),
        )
        == 50
    )


def test_cost_rounds_up_any_fraction():
    weights = {"input_weight": Decimal("0.5"), "output_weight": Decimal("1.5")}
    assert cost(prompt_tokens=1, completion_tokens=0, **weights) == 1
    assert cost(prompt_tokens=3, completion_tokens=1, **weights) == 3  # 1.5 + 1.5
    assert cost(prompt_tokens=3, completion_tokens=2, **weights) == 5  # 1.5 + 3 = 4.5


def test_cost_of_tiny_weights_is_exact_not_float():
    tiny = {"input_weight": Decimal("0.000001"), "output_weight": Decimal("0.000001")}
    assert cost(prompt_tokens=1, completion_tokens=0, **tiny) == 1
    assert cost(prompt_tokens=1_000_000, completion_tokens=0, **tiny) == 1
    assert cost(prompt_tokens=1_000_000, completion_tokens=1, **tiny) == 2
    # 0.1 + 0.2 in float is 0.30000000000000004, which would round up to 1 more than exact.
    assert (
        cost(
            prompt_tokens=1,
            completion_tokens=2,
            input_weight=Decimal("0.1"),
            output_weight=Decimal("0.1"),
        )
        == 1
    )


def test_cost_of_huge_token_counts_keeps_every_digit():
    weights = {"input_weight": Decimal("0.000001"), "output_weight": Decimal("123.456789")}
    assert cost(prompt_tokens=10**12, completion_tokens=10**12, **weights) == 123_456_790 * 10**6
    assert cost(prompt_tokens=10**12 + 1, completion_tokens=0, **weights) == 1_000_001


def test_cost_accepts_strings_and_ints_but_never_floats():
    assert cost(prompt_tokens=2, completion_tokens=2, input_weight="0.25", output_weight=1) == 3
    with pytest.raises(TypeError, match="never float"):
        cost(prompt_tokens=1, completion_tokens=1, input_weight=0.5, output_weight=Decimal(1))


def test_cost_refuses_negative_tokens():
    with pytest.raises(ValueError, match="negative"):
        cost(
            prompt_tokens=-1, completion_tokens=0, input_weight=Decimal(1), output_weight=Decimal(1)
        )


@pytest.mark.parametrize(
    ("budget", "prompt", "input_weight", "output_weight", "n", "expected"),
    [
        (100, 10, "1", "1", 1, 90),
        (100, 10, "1.5", "3", 1, 28),  # 15 + 28 × 3 = 99 ≤ 100; 29 would cost 102
        (100, 10, "1", "1", 3, 30),  # three choices share the room
        (10, 20, "1", "1", 1, -10),  # the prompt alone does not fit
        (1, 0, "0.000001", "0.000001", 1, 1_000_000),
        (7, 0, "0.333333", "0.333333", 1, 21),
    ],
)
def test_max_completion_within_is_the_largest_answer_that_fits(
    budget, prompt, input_weight, output_weight, n, expected
):
    weights = {"input_weight": Decimal(input_weight), "output_weight": Decimal(output_weight)}
    tokens = max_completion_within(budget=budget, prompt_tokens=prompt, n=n, **weights)
    assert tokens == expected
    if tokens >= 0:
        assert cost(prompt_tokens=prompt, completion_tokens=tokens * n, **weights) <= budget
        assert cost(prompt_tokens=prompt, completion_tokens=(tokens + 1) * n, **weights) > budget


def test_max_completion_within_is_exact_beyond_decimal_precision():
    # (3·10²⁸ − 1) ÷ 3 = 10²⁸ − ⅓ has more digits than Decimal's default context keeps.
    weights = {"input_weight": Decimal("1"), "output_weight": Decimal("3")}
    budget = 3 * 10**28 - 1
    tokens = max_completion_within(budget=budget, prompt_tokens=0, **weights)
    assert tokens == 10**28 - 1
    assert cost(prompt_tokens=0, completion_tokens=tokens, **weights) == budget - 2
    assert cost(prompt_tokens=0, completion_tokens=tokens + 1, **weights) == budget + 1
