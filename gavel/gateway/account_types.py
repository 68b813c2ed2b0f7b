"""Typed values of the Connect gateway functions (``gavel.gateway.accounts``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class AccountRequirements:
    """Stripe's ``requirements`` hash: keys still to collect and the deadline (epoch s)."""

    currently_due: tuple[str, ...] = ()
    eventually_due: tuple[str, ...] = ()
    past_due: tuple[str, ...] = ()
    pending_verification: tuple[str, ...] = ()
    current_deadline: int | None = None
    disabled_reason: str | None = None
    errors: tuple[str, ...] = ()  # "<requirement>: <reason>" lines Stripe gave


@dataclass(frozen=True, slots=True)
class StripeBankAccount:
    id: str
    bank_name: str
    last4: str
    currency: str


@dataclass(frozen=True, slots=True)
class StripeAccount:
    """A connected account as Gavel mirrors it, read through the v1 Accounts API (which serves
    accounts created with either API)."""

    id: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    capabilities: dict[str, str]  # name -> active | inactive | pending | unrequested
    requirements: AccountRequirements
    dashboard_type: str  # express | full | none
    requirement_collection: str  # stripe | application
    country: str
    default_currency: str
    email: str | None = None
    business_type: str | None = None
    bank_accounts: tuple[StripeBankAccount, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class StripeAccountLink:
    url: str
    expires_at: int  # epoch seconds


@dataclass(frozen=True, slots=True)
class StripeAccountSession:
    account_id: str
    client_secret: str
    expires_at: int  # epoch seconds


@dataclass(frozen=True, slots=True)
class StripeLoginLink:
    url: str
