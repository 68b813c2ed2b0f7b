from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gavel.common.money import (
    Money,
    MoneyError,
    allocate,
    apply_bps,
    currency_exponent,
    fee_compute,
    round_half_even_div,
)


@given(
    total=st.integers(min_value=-(10**12), max_value=10**12),
    weights=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=30).filter(
        lambda weights: sum(weights) > 0
    ),
)
def test_allocate_parts_sum_to_the_whole_and_keep_the_sign(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total
    assert len(parts) == len(weights)
    if total >= 0:
        assert all(part >= 0 for part in parts)
    else:
        assert all(part <= 0 for part in parts)
    for part, weight in zip(parts, weights, strict=True):
        exact = abs(total) * weight / sum(weights)
        assert abs(abs(part) - exact) < 1 + 1e-9
        if weight == 0:
            assert part == 0


def test_allocate_gives_leftover_units_to_largest_remainders_earlier_first() -> None:
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(10, [3, 3, 4]) == [3, 3, 4]
    assert allocate(5, [1, 2]) == [2, 3]
    assert allocate(-100, [1, 1, 1]) == [-34, -33, -33]


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1]])
def test_allocate_refuses_bad_weights(weights: list[int]) -> None:
    with pytest.raises(MoneyError):
        allocate(100, weights)


@given(
    numerator=st.integers(min_value=-(10**15), max_value=10**15),
    denominator=st.integers(min_value=1, max_value=10**6),
)
def test_round_half_even_matches_python_round_on_fractions(
    numerator: int, denominator: int
) -> None:
    from fractions import Fraction

    assert round_half_even_div(numerator, denominator) == round(Fraction(numerator, denominator))


def test_apply_bps_rounds_half_to_even() -> None:
    assert apply_bps(50, 1000) == 5
    assert apply_bps(25, 2000) == 5
    assert apply_bps(5, 1000) == 0  # 0.5 -> 0 (even)
    assert apply_bps(15, 1000) == 2  # 1.5 -> 2 (even)
    assert apply_bps(125, 1000) == 12  # 12.5 -> 12
    assert apply_bps(135, 1000) == 14  # 13.5 -> 14
    with pytest.raises(MoneyError):
        apply_bps(100, -1)


@given(
    amount=st.integers(min_value=0, max_value=10**12),
    rate=st.integers(min_value=0, max_value=10_000),
    fixed=st.integers(min_value=0, max_value=10_000),
    minimum=st.integers(min_value=0, max_value=10_000),
)
def test_fee_is_never_negative_nor_above_the_amount(
    amount: int, rate: int, fixed: int, minimum: int
) -> None:
    fee = fee_compute(amount, rate_bps=rate, fixed_minor=fixed, minimum_minor=minimum)
    assert 0 <= fee <= amount
    assert fee + (amount - fee) == amount


def test_fee_clamps_to_minimum_and_maximum() -> None:
    assert fee_compute(1000, rate_bps=500, minimum_minor=100) == 100
    assert fee_compute(100_000, rate_bps=500, maximum_minor=2500) == 2500
    assert fee_compute(10_000, rate_bps=290, fixed_minor=30) == 320
    assert fee_compute(50, rate_bps=0, fixed_minor=100) == 50
    with pytest.raises(MoneyError):
        fee_compute(-1, rate_bps=10)


def test_money_refuses_floats_and_unknown_currencies_and_mixing() -> None:
    with pytest.raises(MoneyError):
        Money(10.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money(True, "USD")
    with pytest.raises(MoneyError):
        Money(100, "XXX")
    with pytest.raises(MoneyError):
        Money(100, "USD") + Money(100, "EUR")
    assert Money(100, "usd") + Money(5, "USD") == Money(105, "USD")
    assert Money(100, "USD") - Money(150, "USD") == Money(-50, "USD")
    assert -Money(3, "EUR") == Money(-3, "EUR")


def test_zero_and_three_decimal_currencies_format_right() -> None:
    assert currency_exponent("jpy") == 0
    assert currency_exponent("KRW") == 0
    assert currency_exponent("KWD") == 3
    assert currency_exponent("USD") == 2
    assert Money(1200, "JPY").format() == "JPY 1200"
    assert Money(1250, "USD").format() == "USD 12.50"
    assert Money(-5, "USD").format() == "USD -0.05"
    assert Money(1005, "KWD").format() == "KWD 1.005"
