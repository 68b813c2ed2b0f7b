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


def amounts_expected_sql(
    *,
    unit_price: str,
    quantity: str,
    shipping: str,
    seller_percent: str,
    seller_minimum: str,
    buyer_percent: str,
    buyer_minimum: str,
) -> str:
    """``amounts_compute`` in SQL over the given column expressions: LATERAL joins naming
    ``expected.sum_cents``, ``expected.subtotal_cents``, ``expected.seller_commission_cents``,
    ``expected.buyer_commission_cents`` and ``expected.is_valid`` (false where the Python
    rules raise MoneyError: a quantity below one, a negative item total or percentage). As the
    loaders call ``amounts_compute``, no quantity counts as 1 (the portal's column default).

    Exact: a percentage has three decimals, so item total × percent × 1000 is an integer and
    the commission is that divided by 100 000, rounded half to even in numeric arithmetic.
    A caller uses it as a filter, never as the answer: rows it does not find equal to what is
    stored are computed again by ``amounts_compute``."""

    def commission(scaled: str, minimum: str) -> str:
        quotient, twice_rest = f"div({scaled}, 100000)", f"2 * mod({scaled}, 100000)"
        return (
            f"GREATEST({quotient} + CASE WHEN {twice_rest} > 100000 OR ({twice_rest} = 100000"
            f" AND mod({quotient}, 2) = 1) THEN 1 ELSE 0 END, COALESCE({minimum}, 0))"
        )

    return (
        f" CROSS JOIN LATERAL (SELECT ({unit_price})::numeric * COALESCE({quantity}, 1)"
        f" AS item_total, COALESCE({shipping}, 0) AS shipping,"
        f" COALESCE({seller_percent}, 0) AS seller_percent,"
        f" COALESCE({buyer_percent}, 0) AS buyer_percent) AS _terms"
        " CROSS JOIN LATERAL (SELECT _terms.item_total * _terms.seller_percent * 1000 AS seller,"
        " _terms.item_total * _terms.buyer_percent * 1000 AS buyer) AS _scaled"
        f" CROSS JOIN LATERAL (SELECT {commission('_scaled.seller', seller_minimum)} AS seller,"
        f" {commission('_scaled.buyer', buyer_minimum)} AS buyer) AS _commission"
        " CROSS JOIN LATERAL (SELECT _terms.item_total + _terms.shipping + _commission.buyer"
        " AS sum_cents, _terms.item_total + _terms.shipping AS subtotal_cents,"
        " _commission.seller AS seller_commission_cents,"
        " _commission.buyer AS buyer_commission_cents,"
        f" COALESCE({quantity}, 1) >= 1 AND _terms.item_total >= 0"
        " AND _terms.seller_percent >= 0 AND _terms.buyer_percent >= 0 AS is_valid) AS expected"
    )
