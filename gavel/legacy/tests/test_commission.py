from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gavel.common.money import MoneyError
from gavel.legacy.commission import amounts_compute, commission_compute


def reference_commission(item_total: int, percent: Decimal, minimum: int) -> int:
    """The rule as written: max(item total × percent / 100, minimum), half to even."""
    exact = Decimal(item_total) * percent / Decimal(100)
    rounded = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return max(rounded, minimum)


percents = st.decimals(min_value=0, max_value=100, places=3, allow_nan=False)


@given(
    item_total=st.integers(min_value=0, max_value=10**12),
    percent=percents,
    minimum=st.integers(min_value=0, max_value=10**6),
)
def test_commission_matches_the_reference(item_total: int, percent: Decimal, minimum: int):
    with_decimal_context = reference_commission(item_total, percent, minimum)
    assert (
        commission_compute(item_total_cents=item_total, percent=percent, minimum_cents=minimum)
        == with_decimal_context
    )


@given(
    unit_price=st.integers(min_value=0, max_value=10**9),
    quantity=st.integers(min_value=1, max_value=50),
    shipping=st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)),
    seller_percent=percents,
    seller_minimum=st.integers(min_value=0, max_value=10**4),
    buyer_percent=percents,
    buyer_minimum=st.integers(min_value=0, max_value=10**4),
)
def test_amounts_follow_the_portal_rules(
    unit_price, quantity, shipping, seller_percent, seller_minimum, buyer_percent, buyer_minimum
):
    amounts = amounts_compute(
        unit_price_cents=unit_price,
        quantity=quantity,
        shipping_price_cents=shipping,
        commission_from_seller=seller_percent,
        minimum_commission_cents=seller_minimum,
        commission_from_buyer=buyer_percent,
        minimum_buyer_fee_cents=buyer_minimum,
    )
    item_total = unit_price * quantity
    seller = reference_commission(item_total, seller_percent, seller_minimum)
    buyer = reference_commission(item_total, buyer_percent, buyer_minimum)
    assert amounts.item_total_cents == item_total
    assert amounts.seller_commission_cents == seller
    assert amounts.buyer_commission_cents == buyer
    assert amounts.sum_cents == item_total + (shipping or 0) + buyer
    assert amounts.subtotal_cents == item_total + (shipping or 0)
    assert amounts.seller_net_cents == amounts.sum_cents - seller - buyer


@pytest.mark.parametrize(
    ("item_total", "percent", "minimum", "expected"),
    [
        (25, "10", 0, 2),  # 2.5 -> 2 (tie to even)
        (35, "10", 0, 4),  # 3.5 -> 4 (tie to even)
        (1010, "7.5", 0, 76),  # 75.75
        (1000, "7.5", 100, 100),  # the minimum wins
        (2000, "12.25", 0, 245),
        (10, "12.25", 0, 1),  # 1.225
        (0, "10", 50, 50),
        (1234, 0, 0, 0),
    ],
)
def test_commission_examples(item_total, percent, minimum, expected):
    assert (
        commission_compute(item_total_cents=item_total, percent=percent, minimum_cents=minimum)
        == expected
    )


def test_shipping_is_not_commissioned():
    amounts = amounts_compute(
        unit_price_cents=1000,
        quantity=2,
        shipping_price_cents=500,
        commission_from_seller=Decimal("10"),
        minimum_commission_cents=0,
        commission_from_buyer=Decimal("2.5"),
        minimum_buyer_fee_cents=0,
    )
    assert (amounts.seller_commission_cents, amounts.buyer_commission_cents) == (200, 50)
    assert (amounts.sum_cents, amounts.seller_net_cents) == (2550, 2300)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"item_total_cents": -1, "percent": "1", "minimum_cents": 0},
        {"item_total_cents": 1, "percent": "-1", "minimum_cents": 0},
    ],
)
def test_commission_refuses_negative_inputs(kwargs):
    with pytest.raises(MoneyError):
        commission_compute(**kwargs)


def test_quantity_must_be_positive():
    with pytest.raises(MoneyError):
        amounts_compute(
            unit_price_cents=1,
            quantity=0,
            shipping_price_cents=None,
            commission_from_seller=None,
            minimum_commission_cents=None,
            commission_from_buyer=None,
            minimum_buyer_fee_cents=None,
        )
