"""Typed values the gateway returns; callers never see SDK objects."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StripeCustomer:
    id: str
    email: str | None
    deleted: bool = False  # Stripe answers a retrieve of a deleted customer with a stub


@dataclass(frozen=True, slots=True)
class StripeSetupIntent:
    """A SetupIntent as Gavel needs it. ``client_secret`` goes to the app and is never stored."""

    id: str
    status: str
    client_secret: str | None
    customer_id: str | None
    payment_method_id: str | None
    last_error_code: str | None
    last_error_decline_code: str | None
    usage: str | None
    gavel_setup_id: str | None = None  # metadata: Gavel's own setup row (None: made elsewhere)


@dataclass(frozen=True, slots=True)
class StripePaymentMethod:
    """Display details of a payment method: never a card number."""

    id: str
    type: str
    customer_id: str | None
    card_brand: str | None
    card_last4: str | None
    card_exp_month: int | None
    card_exp_year: int | None
