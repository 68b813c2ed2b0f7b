# The SQL under test is built from column names in this file; values are parameters.
# ruff: noqa: S608

from __future__ import annotations

import random
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from gavel.common.money import MoneyError
from gavel.legacy.commission import amounts_compute, amounts_expected_sql, commission_compute


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


def _sql_amounts(cases: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``amounts_expected_sql`` over ``cases`` (unit price, quantity, shipping, seller percent,
    seller minimum, buyer percent, buyer minimum), in one query, in order."""
    expected = amounts_expected_sql(
        unit_price="c.unit_price",
        quantity="c.quantity",
        shipping="c.shipping",
        seller_percent="c.seller_percent",
        seller_minimum="c.seller_minimum",
        buyer_percent="c.buyer_percent",
        buyer_minimum="c.buyer_minimum",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT expected.is_valid, expected.sum_cents, expected.subtotal_cents,"
            " expected.seller_commission_cents, expected.buyer_commission_cents"
            " FROM unnest(%s::bigint[], %s::int[], %s::bigint[], %s::numeric(6,3)[],"
            " %s::bigint[], %s::numeric(6,3)[], %s::bigint[]) WITH ORDINALITY"
            " AS c(unit_price, quantity, shipping, seller_percent, seller_minimum,"
            f" buyer_percent, buyer_minimum, position){expected} ORDER BY c.position",
            [list(column) for column in zip(*cases, strict=True)],
        )
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


def _python_amounts(case: tuple[Any, ...]) -> tuple[Any, ...]:
    unit_price, quantity, shipping, seller_pct, seller_min, buyer_pct, buyer_min = case
    try:
        amounts = amounts_compute(
            unit_price_cents=unit_price,
            quantity=1 if quantity is None else quantity,  # as the loaders call it
            shipping_price_cents=shipping,
            commission_from_seller=seller_pct,
            minimum_commission_cents=seller_min,
            commission_from_buyer=buyer_pct,
            minimum_buyer_fee_cents=buyer_min,
        )
    except MoneyError:
        return (False,)
    return (
        True,
        amounts.sum_cents,
        amounts.subtotal_cents,
        amounts.seller_commission_cents,
        amounts.buyer_commission_cents,
    )


@pytest.mark.django_db
def test_the_sql_rules_give_what_python_gives():
    """The SQL form the ledger load filters with agrees with ``amounts_compute`` on ties,
    minimums, missing terms, large amounts and inputs the rules refuse."""
    rng = random.Random(7)
    cases: list[tuple[Any, ...]] = [
        (25, 1, None, Decimal("10"), 0, Decimal("10"), 0),  # 2.5: tie to even, down
        (35, 1, 0, Decimal("10"), 0, Decimal("10"), 0),  # 3.5: tie to even, up
        (1010, 1, 500, Decimal("7.5"), 100, Decimal("2.5"), 0),
        (10, 3, None, Decimal("12.25"), None, None, None),
        (10**12, 50, 10**6, Decimal("99.999"), 0, Decimal("0.001"), 0),
        (100, None, None, None, None, None, None),  # no quantity: one
        (100, 0, None, Decimal("5"), 0, Decimal("5"), 0),  # refused: quantity 0
        (100, -2, None, Decimal("5"), 0, Decimal("5"), 0),  # refused
        (-100, 1, None, Decimal("5"), 0, Decimal("5"), 0),  # refused
        (100, 1, None, Decimal("-5"), 0, Decimal("5"), 0),  # refused
    ]
    for _ in range(3000):
        cases.append(
            (
                rng.choice([rng.randint(0, 10**4), rng.randint(0, 10**9), rng.randint(1, 40) * 5]),
                rng.choice([None, 0, 1, 1, 2, rng.randint(1, 50)]),
                rng.choice([None, 0, rng.randint(0, 10**5)]),
                rng.choice([None, Decimal(rng.randint(0, 100_000)) / 1000, Decimal("12.5")]),
                rng.choice([None, 0, rng.randint(0, 10**4)]),
                rng.choice([None, Decimal(rng.randint(0, 100_000)) / 1000, Decimal("2.5")]),
                rng.choice([None, 0, rng.randint(0, 10**3)]),
            )
        )
    from_sql = _sql_amounts(cases)
    for case, row in zip(cases, from_sql, strict=True):
        python = _python_amounts(case)
        assert (row if python[0] else row[:1]) == python, case
