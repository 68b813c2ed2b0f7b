"""Stripe Connect accounts: create (controller properties), retrieve, account links, account
sessions for the embedded components, and Express Dashboard login links.

Gavel creates v1 accounts (docs/adr/0004-connect-accounts.md) and reads every account, v1 or
v2, through the v1 Accounts API, which serves both.
"""

from __future__ import annotations

from typing import Any

from gavel.gateway.account_types import (
    AccountRequirements,
    StripeAccount,
    StripeAccountLink,
    StripeAccountSession,
    StripeBankAccount,
    StripeLoginLink,
)
from gavel.gateway.client import stripe_client
from gavel.gateway.errors import GatewayFinalError, stripe_errors_translated
from gavel.gateway.keys import idempotency_key

# Controller properties equivalent to the legacy account types, which Stripe now recommends
# describing by who pays fees, who bears losses, which dashboard and who collects requirements.
CONTROLLER_PRESETS: dict[str, dict[str, Any]] = {
    "express": {
        "fees": {"payer": "application"},
        "losses": {"payments": "application"},
        "stripe_dashboard": {"type": "express"},
        "requirement_collection": "stripe",
    },
    "standard": {
        "fees": {"payer": "account"},
        "losses": {"payments": "stripe"},
        "stripe_dashboard": {"type": "full"},
        "requirement_collection": "stripe",
    },
    "custom": {
        "fees": {"payer": "application"},
        "losses": {"payments": "application"},
        "stripe_dashboard": {"type": "none"},
        "requirement_collection": "application",
    },
}

LINK_TYPES = ("account_onboarding", "account_update")


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _requirements(raw: Any) -> AccountRequirements:
    raw = raw if isinstance(raw, dict) else {}
    errors = tuple(
        f"{item.get('requirement')}: {item.get('reason') or item.get('code')}"
        for item in raw.get("errors") or []
        if isinstance(item, dict)
    )
    deadline = raw.get("current_deadline")
    reason = raw.get("disabled_reason")
    return AccountRequirements(
        currently_due=_strings(raw.get("currently_due")),
        eventually_due=_strings(raw.get("eventually_due")),
        past_due=_strings(raw.get("past_due")),
        pending_verification=_strings(raw.get("pending_verification")),
        current_deadline=deadline if isinstance(deadline, int) else None,
        disabled_reason=reason if isinstance(reason, str) and reason else None,
        errors=errors,
    )


def _bank_accounts(raw: Any) -> tuple[StripeBankAccount, ...]:
    data = raw.get("data") if isinstance(raw, dict) else None
    banks = []
    for item in data or []:
        if isinstance(item, dict) and item.get("object") == "bank_account":
            banks.append(
                StripeBankAccount(
                    id=str(item.get("id") or ""),
                    bank_name=str(item.get("bank_name") or ""),
                    last4=str(item.get("last4") or ""),
                    currency=str(item.get("currency") or "").upper(),
                )
            )
    return tuple(banks)


def account_from_payload(payload: dict[str, Any]) -> StripeAccount:
    """Our value for a v1 account object (an API answer or an event's snapshot)."""
    if payload.get("object") != "account" or not isinstance(payload.get("id"), str):
        raise GatewayFinalError("Stripe answered with something that is not an account")
    controller = payload.get("controller")
    controller = controller if isinstance(controller, dict) else {}
    dashboard = controller.get("stripe_dashboard")
    dashboard = dashboard if isinstance(dashboard, dict) else {}
    capabilities = payload.get("capabilities")
    return StripeAccount(
        id=payload["id"],
        charges_enabled=bool(payload.get("charges_enabled")),
        payouts_enabled=bool(payload.get("payouts_enabled")),
        details_submitted=bool(payload.get("details_submitted")),
        capabilities={
            str(name): str(status)
            for name, status in (capabilities if isinstance(capabilities, dict) else {}).items()
        },
        requirements=_requirements(payload.get("requirements")),
        dashboard_type=str(dashboard.get("type") or ""),
        requirement_collection=str(controller.get("requirement_collection") or ""),
        country=str(payload.get("country") or ""),
        default_currency=str(payload.get("default_currency") or "").upper(),
        email=_text_or_none(payload.get("email")),
        business_type=_text_or_none(payload.get("business_type")),
        bank_accounts=_bank_accounts(payload.get("external_accounts")),
    )


def account_create(
    *,
    operation_id: str | int,
    preset: str,
    country: str,
    capabilities: list[str],
    metadata: dict[str, str] | None = None,
) -> StripeAccount:
    """Create a v1 connected account with the controller properties of ``preset``.

    The same ``operation_id`` always sends the same idempotency key, so a retried or doubled
    request yields the one account Stripe created first.
    """
    if preset not in CONTROLLER_PRESETS:
        raise ValueError(f"Unknown Connect account preset: {preset!r}")
    params: dict[str, Any] = {
        "controller": CONTROLLER_PRESETS[preset],
        "country": country,
        "capabilities": {name: {"requested": True} for name in capabilities},
        "metadata": metadata or {},
    }
    with stripe_errors_translated():
        account = stripe_client().v1.accounts.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key("account_create", operation_id)},
        )
    return account_from_payload(account.to_dict())


def account_retrieve(*, account_id: str) -> StripeAccount:
    with stripe_errors_translated():
        account = stripe_client().v1.accounts.retrieve(account_id)
    return account_from_payload(account.to_dict())


def account_link_create(
    *,
    operation_id: str | int,
    account_id: str,
    link_type: str,
    refresh_url: str,
    return_url: str,
) -> StripeAccountLink:
    """A single-use link to Stripe-hosted onboarding (or update) that expires within minutes."""
    if link_type not in LINK_TYPES:
        raise ValueError(f"Unknown account link type: {link_type!r}")
    with stripe_errors_translated():
        link = stripe_client().v1.account_links.create(
            params={
                "account": account_id,
                "type": link_type,
                "refresh_url": refresh_url,
                "return_url": return_url,
            },
            options={"idempotency_key": idempotency_key("account_link_create", operation_id)},
        )
    return StripeAccountLink(url=link.url, expires_at=link.expires_at)


# The embedded components a seller's screens use: onboarding, account management (bank
# account, details) and the banner that tells them what Stripe needs next.
SESSION_COMPONENTS: dict[str, Any] = {
    "account_onboarding": {"enabled": True},
    "account_management": {"enabled": True},
    "notification_banner": {"enabled": True},
}


def account_session_create(*, operation_id: str | int, account_id: str) -> StripeAccountSession:
    """A short-lived client secret for Stripe's embedded Connect components."""
    with stripe_errors_translated():
        session = stripe_client().v1.account_sessions.create(
            params={"account": account_id, "components": SESSION_COMPONENTS},  # type: ignore[typeddict-item]
            options={"idempotency_key": idempotency_key("account_session_create", operation_id)},
        )
    return StripeAccountSession(
        account_id=session.account,
        client_secret=session.client_secret,
        expires_at=session.expires_at,
    )


def login_link_create(*, operation_id: str | int, account_id: str) -> StripeLoginLink:
    """A one-time link into the Express Dashboard (Express accounts that finished onboarding)."""
    with stripe_errors_translated():
        link = stripe_client().v1.accounts.login_links.create(
            account_id,
            options={"idempotency_key": idempotency_key("login_link_create", operation_id)},
        )
    return StripeLoginLink(url=link.url)
