"""Money primitives: integer minor units plus an ISO 4217 currency, rates in basis points.

The one rounding rule (docs/adr/0001-money.md): a rate applied to an amount is rounded to the
nearest minor unit, ties to even ("banker's rounding", the rule the legacy portal used), with
integer arithmetic only. An amount split into parts uses the largest-remainder method, so the
parts always sum to the whole and no part is negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BPS_PER_WHOLE = 10_000

# Currencies whose minor unit is the major unit (Stripe's zero-decimal list) and those with
# three decimals. Every other supported ISO 4217 code has two.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA",
        "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
    }
)  # fmt: skip
THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
TWO_DECIMAL_CURRENCIES = frozenset(
    {
        "AED", "AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF",
        "IDR", "ILS", "INR", "MXN", "MYR", "NOK", "NZD", "PHP", "PLN", "RON", "SEK", "SGD",
        "THB", "TRY", "TWD", "USD", "ZAR",
    }
)  # fmt: skip
SUPPORTED_CURRENCIES = ZERO_DECIMAL_CURRENCIES | THREE_DECIMAL_CURRENCIES | TWO_DECIMAL_CURRENCIES


class MoneyError(ValueError):
    """An amount, currency or rate that money arithmetic refuses."""


def currency_normalize(code: str) -> str:
    """Upper-case ISO 4217 code, or MoneyError for a currency Gavel does not support."""
    normalized = code.strip().upper()
    if normalized not in SUPPORTED_CURRENCIES:
        raise MoneyError(f"Unsupported currency: {code!r}")
    return normalized


def currency_exponent(code: str) -> int:
    """Number of decimal places of the currency's minor unit (JPY 0, USD 2, KWD 3)."""
    normalized = currency_normalize(code)
    if normalized in ZERO_DECIMAL_CURRENCIES:
        return 0
    if normalized in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: integer minor units of one currency."""

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise MoneyError("amount_minor must be an integer number of minor units")
        object.__setattr__(self, "currency", currency_normalize(self.currency))

    def __add__(self, other: Money) -> Money:
        self._require_same_currency(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._require_same_currency(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def _require_same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"Currency mismatch: {self.currency} and {other.currency}")

    def format(self) -> str:
        """Human-readable form for logs and the demo, e.g. ``USD 12.50`` or ``JPY 1200``."""
        exponent = currency_exponent(self.currency)
        sign = "-" if self.amount_minor < 0 else ""
        magnitude = abs(self.amount_minor)
        if exponent == 0:
            return f"{self.currency} {sign}{magnitude}"
        whole, fraction = divmod(magnitude, 10**exponent)
        return f"{self.currency} {sign}{whole}.{fraction:0{exponent}d}"


def round_half_even_div(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest integer, ties to even."""
    if denominator <= 0:
        raise MoneyError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def apply_bps(amount_minor: int, rate_bps: int) -> int:
    """``amount × rate`` in minor units, with the documented rounding rule."""
    if rate_bps < 0:
        raise MoneyError("rate_bps must not be negative")
    return round_half_even_div(amount_minor * rate_bps, BPS_PER_WHOLE)


def fee_compute(
    amount_minor: int,
    *,
    rate_bps: int,
    fixed_minor: int = 0,
    minimum_minor: int = 0,
    maximum_minor: int | None = None,
) -> int:
    """A fee: rate plus fixed part, clamped to [minimum, maximum] and never above the amount."""
    if amount_minor < 0:
        raise MoneyError("amount_minor must not be negative")
    fee = apply_bps(amount_minor, rate_bps) + fixed_minor
    fee = max(fee, minimum_minor)
    if maximum_minor is not None:
        fee = min(fee, maximum_minor)
    return max(0, min(fee, amount_minor))


def allocate(total_minor: int, weights: Sequence[int]) -> list[int]:
    """Split ``total_minor`` in proportion to ``weights``; the parts sum exactly to the total.

    Largest-remainder method: each part gets the floor of its exact share, then the minor
    units left over go one each to the parts with the largest remainders, earlier parts first
    on ties. A non-negative total gives non-negative parts.
    """
    if not weights:
        raise MoneyError("allocate needs at least one weight")
    if any(weight < 0 for weight in weights):
        raise MoneyError("weights must not be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise MoneyError("weights must not all be zero")
    sign = -1 if total_minor < 0 else 1
    magnitude = abs(total_minor)
    floors: list[int] = []
    remainders: list[tuple[int, int]] = []
    for index, weight in enumerate(weights):
        share, remainder = divmod(magnitude * weight, weight_sum)
        floors.append(share)
        remainders.append((-remainder, index))
    leftover = magnitude - sum(floors)
    for _, index in sorted(remainders)[:leftover]:
        floors[index] += 1
    return [sign * part for part in floors]
