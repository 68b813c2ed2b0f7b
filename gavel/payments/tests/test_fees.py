"""Fees and splits: exact examples and property-based tests of the rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gavel.common.money import MoneyError
from gavel.payments.fees import (
    CommissionRule,
    LineRefundable,
    line_fees_compute,
    refund_allocate,
    refundable_minor,
    seller_shares,
)
from gavel.payments.models import FeeSchedule
from gavel.payments.services.orders import commission_rule_for
from gavel.payments.tests.factories import user_make

RULE = CommissionRule(rate_bps=1_000, minimum_minor=100, maximum_minor=50_000)


def test_line_fees_examples() -> None:
    fees = line_fees_compute(hammer_minor=10_000, commission=RULE, buyers_premium_bps=500)
    assert (fees.commission_minor, fees.buyers_premium_minor, fees.seller_net_minor) == (
        1_000,
        500,
        9_000,
    )
    assert fees.total_minor == 10_500
    assert fees.platform_minor == 1_500
    # Minimum and maximum clamp the commission; half-to-even rounding of the premium.
    assert (
        line_fees_compute(
            hammer_minor=500, commission=RULE, buyers_premium_bps=500
        ).commission_minor
        == 100
    )
    assert (
        line_fees_compute(
            hammer_minor=10_000_000, commission=RULE, buyers_premium_bps=0
        ).commission_minor
        == 50_000
    )
    assert (
        line_fees_compute(
            hammer_minor=50, commission=RULE, buyers_premium_bps=500
        ).buyers_premium_minor
        == 2
    )
    assert (
        line_fees_compute(
            hammer_minor=70, commission=RULE, buyers_premium_bps=500
        ).buyers_premium_minor
        == 4
    )
    with pytest.raises(MoneyError):
        line_fees_compute(hammer_minor=0, commission=RULE, buyers_premium_bps=0)
    with pytest.raises(MoneyError):
        line_fees_compute(hammer_minor=1, commission=RULE, buyers_premium_bps=0, buyer_fee_minor=-1)


rules = st.builds(
    CommissionRule,
    rate_bps=st.integers(0, 10_000),
    fixed_minor=st.integers(0, 1_000),
    minimum_minor=st.integers(0, 1_000),
    maximum_minor=st.one_of(st.none(), st.integers(0, 100_000)),
)


@settings(max_examples=300, deadline=None)
@given(
    hammer=st.integers(1, 10**10),
    rule=rules,
    premium_bps=st.integers(0, 5_000),
    buyer_fee=st.integers(0, 1_000),
)
def test_fee_split_properties(
    hammer: int, rule: CommissionRule, premium_bps: int, buyer_fee: int
) -> None:
    fees = line_fees_compute(
        hammer_minor=hammer,
        commission=rule,
        buyers_premium_bps=premium_bps,
        buyer_fee_minor=buyer_fee,
    )
    assert 0 <= fees.commission_minor <= hammer
    if rule.maximum_minor is not None:
        assert fees.commission_minor <= rule.maximum_minor
    assert fees.seller_net_minor + fees.commission_minor == hammer
    assert fees.total_minor == fees.seller_net_minor + fees.platform_minor
    assert fees.buyers_premium_minor >= 0


lines_strategy = st.lists(
    st.builds(
        LineRefundable,
        seller_minor=st.integers(0, 10**7),
        commission_minor=st.integers(0, 10**6),
        premium_minor=st.integers(0, 10**6),
    ),
    min_size=1,
    max_size=5,
).filter(lambda lines: refundable_minor(lines, premium_refundable=False) > 0)


@settings(max_examples=300, deadline=None)
@given(lines=lines_strategy, fraction=st.floats(0.0001, 1.0), premium=st.booleans())
def test_refund_allocation_properties(
    lines: list[LineRefundable], fraction: float, premium: bool
) -> None:
    available = refundable_minor(lines, premium_refundable=premium)
    amount = max(1, int(available * fraction))
    parts = refund_allocate(amount, lines, premium_refundable=premium)
    assert sum(part.total_minor for part in parts) == amount
    for line, part in zip(lines, parts, strict=True):
        assert 0 <= part.seller_minor <= line.seller_minor
        assert 0 <= part.commission_minor <= line.commission_minor
        assert 0 <= part.premium_minor <= (line.premium_minor if premium else 0)
    with pytest.raises(MoneyError):
        refund_allocate(available + 1, lines, premium_refundable=premium)


@settings(max_examples=200, deadline=None)
@given(lines=lines_strategy, amount=st.integers(0, 10**8))
def test_seller_shares_never_exceed_what_sellers_hold(
    lines: list[LineRefundable], amount: int
) -> None:
    shares = seller_shares(amount, lines)
    assert all(0 <= share <= line.seller_minor for share, line in zip(shares, lines, strict=True))
    assert sum(shares) <= amount


def test_seller_shares_of_empty_lines() -> None:
    assert seller_shares(100, [LineRefundable(0, 0, 0)]) == [0]


def test_commission_overrides_seller_beats_category(db: None, settings: object) -> None:
    seller = user_make(seller=True)
    default = commission_rule_for(seller_id=seller.pk, category="art", currency="USD")
    assert default.rate_bps == 1_000
    FeeSchedule.objects.create(
        scope=FeeSchedule.Scope.CATEGORY, category="art", currency="USD", rate_bps=1_500
    )
    assert (
        commission_rule_for(seller_id=seller.pk, category="art", currency="USD").rate_bps == 1_500
    )
    assert (
        commission_rule_for(seller_id=seller.pk, category="cars", currency="USD").rate_bps == 1_000
    )
    FeeSchedule.objects.create(
        scope=FeeSchedule.Scope.SELLER,
        seller=seller,
        currency="USD",
        rate_bps=500,
        maximum_minor=900,
    )
    rule = commission_rule_for(seller_id=seller.pk, category="art", currency="USD")
    assert (rule.rate_bps, rule.maximum_minor) == (500, 900)
