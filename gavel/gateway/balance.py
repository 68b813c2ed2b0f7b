"""Stripe balances and balance transactions, of the platform or of a connected account."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gavel.gateway.client import account_options, stripe_client
from gavel.gateway.errors import stripe_errors_translated
from gavel.gateway.payment_types import StripeBalance, StripeBalanceTransaction

PAGE_SIZE = 100


def balance_retrieve(*, account_id: str | None = None) -> StripeBalance:
    with stripe_errors_translated():
        balance = stripe_client().v1.balance.retrieve(options=account_options(account_id))
    return StripeBalance.from_payload(balance.to_dict())


def balance_transaction_retrieve(
    *, balance_transaction_id: str, account_id: str | None = None
) -> StripeBalanceTransaction:
    with stripe_errors_translated():
        transaction = stripe_client().v1.balance_transactions.retrieve(
            balance_transaction_id,
            options=account_options(account_id),
        )
    return StripeBalanceTransaction.from_payload(transaction.to_dict())


def balance_transactions_list(
    *,
    account_id: str | None = None,
    source_id: str | None = None,
    created_from: int | None = None,
) -> Iterator[StripeBalanceTransaction]:
    """Every balance transaction of one balance (optionally of one source, or only those
    created at or after ``created_from``, Unix seconds), page by page."""
    starting_after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        if source_id:
            params["source"] = source_id
        if created_from is not None:
            params["created"] = {"gte": created_from}
        if starting_after:
            params["starting_after"] = starting_after
        with stripe_errors_translated():
            page = stripe_client().v1.balance_transactions.list(
                params=params,  # type: ignore[arg-type]
                options=account_options(account_id),
            )
        payload = page.to_dict()
        items = [item for item in payload.get("data") or [] if isinstance(item, dict)]
        yield from (StripeBalanceTransaction.from_payload(item) for item in items)
        if not payload.get("has_more") or not items:
            return
        starting_after = str(items[-1]["id"])
