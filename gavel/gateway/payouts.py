"""Stripe payouts of a connected account's balance to its bank (manual payout schedule)."""

from __future__ import annotations

from gavel.gateway.client import stripe_client
from gavel.gateway.errors import stripe_errors_translated
from gavel.gateway.keys import idempotency_key
from gavel.gateway.payment_types import StripePayout


def payout_create(
    *,
    operation_id: str | int,
    account_id: str,
    amount_minor: int,
    currency: str,
    metadata: dict[str, str] | None = None,
) -> StripePayout:
    with stripe_errors_translated():
        payout = stripe_client().v1.payouts.create(
            params={
                "amount": amount_minor,
                "currency": currency.lower(),
                "metadata": metadata or {},
            },
            options={
                "idempotency_key": idempotency_key("payout_create", operation_id),
                "stripe_account": account_id,
            },
        )
    return StripePayout.from_payload(payout.to_dict())


def payout_retrieve(*, account_id: str, payout_id: str) -> StripePayout:
    with stripe_errors_translated():
        payout = stripe_client().v1.payouts.retrieve(
            payout_id, options={"stripe_account": account_id}
        )
    return StripePayout.from_payload(payout.to_dict())


def payouts_for_account(*, account_id: str) -> list[StripePayout]:
    """The connected account's recent payouts (the janitor finds one whose answer was lost)."""
    with stripe_errors_translated():
        page = stripe_client().v1.payouts.list(
            params={"limit": 100}, options={"stripe_account": account_id}
        )
    return [
        StripePayout.from_payload(item)
        for item in page.to_dict().get("data") or []
        if isinstance(item, dict)
    ]


def default_bank_account_id(*, account_id: str) -> str | None:
    """The connected account's default external (bank) account, which payouts go to."""
    with stripe_errors_translated():
        page = stripe_client().v1.accounts.external_accounts.list(account_id, params={"limit": 100})
    for item in page.to_dict().get("data") or []:
        if isinstance(item, dict) and item.get("default_for_currency"):
            return str(item["id"])
    return None


def payout_schedule_set_manual(*, operation_id: str | int, account_id: str) -> None:
    """Put a connected account on a manual payout schedule: Gavel's payout run decides when
    its balance goes to the bank."""
    with stripe_errors_translated():
        stripe_client().v1.accounts.update(
            account_id,
            params={"settings": {"payouts": {"schedule": {"interval": "manual"}}}},
            options={"idempotency_key": idempotency_key("payout_schedule_manual", operation_id)},
        )
