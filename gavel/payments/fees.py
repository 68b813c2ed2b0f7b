"""Fees and splits: pure functions over integer minor units (docs/payments.md, "Fees").

Rounding: every rate uses ``gavel.common.money.apply_bps`` (half to even); every split uses
``allocate`` (largest remainder), so parts always sum to the whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gavel.common.money import MoneyError, allocate, apply_bps, fee_compute


@dataclass(frozen=True, slots=True)
class CommissionRule:
    rate_bps: int
    fixed_minor: int = 0
    minimum_minor: int = 0
    maximum_minor: int | None = None


@dataclass(frozen=True, slots=True)
class LineFees:
    hammer_minor: int
    buyers_premium_minor: int
    buyer_fee_minor: int
    commission_minor: int

    @property
    def seller_net_minor(self) -> int:
        return self.hammer_minor - self.commission_minor

    @property
    def total_minor(self) -> int:
        return self.hammer_minor + self.buyers_premium_minor + self.buyer_fee_minor

    @property
    def platform_minor(self) -> int:
        """What the platform keeps of the line (before Stripe's fee)."""
        return self.commission_minor + self.buyers_premium_minor + self.buyer_fee_minor


def line_fees_compute(
    *,
    hammer_minor: int,
    commission: CommissionRule,
    buyers_premium_bps: int,
    buyer_fee_minor: int = 0,
) -> LineFees:
    """The fee breakdown of one lot: the seller pays commission out of the hammer price; the
    buyer pays the hammer price plus the buyer's premium and the fixed buyer's fee."""
    if hammer_minor <= 0:
        raise MoneyError("hammer_minor must be positive")
    if buyer_fee_minor < 0:
        raise MoneyError("buyer_fee_minor must not be negative")
    commission_minor = fee_compute(
        hammer_minor,
        rate_bps=commission.rate_bps,
        fixed_minor=commission.fixed_minor,
        minimum_minor=commission.minimum_minor,
        maximum_minor=commission.maximum_minor,
    )
    return LineFees(
        hammer_minor=hammer_minor,
        buyers_premium_minor=apply_bps(hammer_minor, buyers_premium_bps),
        buyer_fee_minor=buyer_fee_minor,
        commission_minor=commission_minor,
    )


@dataclass(frozen=True, slots=True)
class LineRefundable:
    """What is left to refund on one line, by who bears it."""

    seller_minor: int  # the seller's net not yet refunded
    commission_minor: int
    premium_minor: int  # buyer's premium and buyer's fee

    @property
    def hammer_minor(self) -> int:
        return self.seller_minor + self.commission_minor


@dataclass(frozen=True, slots=True)
class LineRefundParts:
    seller_minor: int
    commission_minor: int
    premium_minor: int

    @property
    def total_minor(self) -> int:
        return self.seller_minor + self.commission_minor + self.premium_minor


def refundable_minor(lines: Sequence[LineRefundable], *, premium_refundable: bool) -> int:
    return sum(
        line.hammer_minor + (line.premium_minor if premium_refundable else 0) for line in lines
    )


def refund_allocate(
    amount_minor: int, lines: Sequence[LineRefundable], *, premium_refundable: bool
) -> list[LineRefundParts]:
    """Split a refund across lines in proportion to what each still has to refund; within a
    line, across the buyer's premium (when refundable) and the hammer price, and the hammer
    part across the seller's net and the commission. No part exceeds what is left."""
    available = refundable_minor(lines, premium_refundable=premium_refundable)
    if amount_minor <= 0 or amount_minor > available:
        raise MoneyError(f"refund of {amount_minor} outside 1..{available}")
    weights = [
        line.hammer_minor + (line.premium_minor if premium_refundable else 0) for line in lines
    ]
    parts: list[LineRefundParts] = []
    for line, share in zip(lines, allocate(amount_minor, weights), strict=True):
        if share == 0:
            parts.append(LineRefundParts(0, 0, 0))
            continue
        if premium_refundable:
            hammer_part, premium_part = allocate(share, [line.hammer_minor, line.premium_minor])
        else:
            hammer_part, premium_part = share, 0
        if hammer_part:
            seller_part, commission_part = allocate(
                hammer_part, [line.seller_minor, line.commission_minor]
            )
        else:
            seller_part = commission_part = 0
        parts.append(LineRefundParts(seller_part, commission_part, premium_part))
    return parts


def seller_shares(amount_minor: int, lines: Sequence[LineRefundable]) -> list[int]:
    """The sellers' part of a disputed amount: split across lines by what each still holds,
    then each line's share by seller net versus the platform's part."""
    weights = [line.hammer_minor + line.premium_minor for line in lines]
    if sum(weights) == 0:
        return [0 for _ in lines]
    shares = allocate(min(amount_minor, sum(weights)), weights)
    result = []
    for line, share in zip(lines, shares, strict=True):
        platform = line.commission_minor + line.premium_minor
        if share == 0 or line.seller_minor + platform == 0:
            result.append(0)
            continue
        result.append(allocate(share, [line.seller_minor, platform])[0])
    return result
