"""The legacy portal's commission rules, reproduced exactly.

item total = unit price × quantity; each commission = max(item total × percent / 100, its
minimum), shipping excluded, rounded half to even; ``sum`` = item total + shipping + buyer
commission; the seller receives sum − both commissions. Percentages may be decimal (7.5), so
the arithmetic is exact (Fraction of the Decimal), never float.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from gavel.common.money import MoneyError, round_half_even_div

Percent = Decimal | int | str


@lru_cache(maxsize=4096)
def percent_fraction(percent: Percent) -> Fraction:
    """The exact value of a percentage as stored (``decimal(6,3)``, an int or its text)."""
    value = Fraction(Decimal(percent) if isinstance(percent, str) else percent)
    if value < 0:
        raise MoneyError("a commission percentage must not be negative")
    return value


def commission_compute(*, item_total_cents: int, percent: Percent, minimum_cents: int) -> int:
    """max(item total × percent / 100, minimum), rounded half to even."""
    if item_total_cents < 0:
        raise MoneyError("item_total_cents must not be negative")
    rate = percent_fraction(percent)
    exact = item_total_cents * rate.numerator
    rounded = round_half_even_div(exact, rate.denominator * 100)
    return max(rounded, minimum_cents)


@dataclass(frozen=True, slots=True)
class PaymentAmounts:
    item_total_cents: int
    shipping_cents: int
    seller_commission_cents: int
    buyer_commission_cents: int
    sum_cents: int  # what the buyer pays
    subtotal_cents: int  # item total + shipping, before the buyer's fee
    seller_net_cents: int  # what the seller receives


def amounts_compute(
    *,
    unit_price_cents: int,
    quantity: int,
    shipping_price_cents: int | None,
    commission_from_seller: Percent | None,
    minimum_commission_cents: int | None,
    commission_from_buyer: Percent | None,
    minimum_buyer_fee_cents: int | None,
) -> PaymentAmounts:
    """Every amount of one legacy payment, from its transaction's terms."""
    if quantity < 1:
        raise MoneyError("listing_quantity must be at least 1")
    item_total = unit_price_cents * quantity
    shipping = shipping_price_cents or 0
    seller_commission = commission_compute(
        item_total_cents=item_total,
        percent=commission_from_seller or 0,
        minimum_cents=minimum_commission_cents or 0,
    )
    buyer_commission = commission_compute(
        item_total_cents=item_total,
        percent=commission_from_buyer or 0,
        minimum_cents=minimum_buyer_fee_cents or 0,
    )
    total = item_total + shipping + buyer_commission
    return PaymentAmounts(
        item_total_cents=item_total,
        shipping_cents=shipping,
        seller_commission_cents=seller_commission,
        buyer_commission_cents=buyer_commission,
        sum_cents=total,
        subtotal_cents=item_total + shipping,
        seller_net_cents=total - seller_commission - buyer_commission,
    )
