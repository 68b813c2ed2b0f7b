"""Stripe transfers to connected accounts and their reversals."""

from __future__ import annotations

from typing import Any

from gavel.gateway.client import stripe_client
from gavel.gateway.errors import stripe_errors_translated
from gavel.gateway.keys import idempotency_key
from gavel.gateway.payment_types import StripeTransfer, StripeTransferReversal


def transfer_create(
    *,
    operation_id: str | int,
    amount_minor: int,
    currency: str,
    destination_account_id: str,
    source_charge_id: str | None,
    transfer_group: str | None,
    metadata: dict[str, str] | None = None,
) -> StripeTransfer:
    """A separate transfer. With ``source_charge_id`` it is tied to that charge's funds, so it
    never waits on (or draws from) the platform's available balance."""
    params: dict[str, Any] = {
        "amount": amount_minor,
        "currency": currency.lower(),
        "destination": destination_account_id,
        "metadata": metadata or {},
    }
    if source_charge_id:
        params["source_transaction"] = source_charge_id
    if transfer_group:
        params["transfer_group"] = transfer_group
    with stripe_errors_translated():
        transfer = stripe_client().v1.transfers.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key("transfer_create", operation_id)},
        )
    return StripeTransfer.from_payload(transfer.to_dict())


def transfer_retrieve(*, transfer_id: str) -> StripeTransfer:
    with stripe_errors_translated():
        transfer = stripe_client().v1.transfers.retrieve(transfer_id)
    return StripeTransfer.from_payload(transfer.to_dict())


def transfers_for_group(*, transfer_group: str) -> list[StripeTransfer]:
    """Transfers of one transfer group (the janitor finds a transfer whose answer was lost)."""
    with stripe_errors_translated():
        page = stripe_client().v1.transfers.list(
            params={"transfer_group": transfer_group, "limit": 100}
        )
    return [
        StripeTransfer.from_payload(item)
        for item in page.to_dict().get("data") or []
        if isinstance(item, dict)
    ]


def transfer_reverse(
    *,
    operation_id: str | int,
    transfer_id: str,
    amount_minor: int,
    metadata: dict[str, str] | None = None,
) -> StripeTransferReversal:
    with stripe_errors_translated():
        reversal = stripe_client().v1.transfers.reversals.create(
            transfer_id,
            params={"amount": amount_minor, "metadata": metadata or {}},
            options={"idempotency_key": idempotency_key("transfer_reverse", operation_id)},
        )
    return StripeTransferReversal.from_payload(reversal.to_dict())


def transfer_reversal_retrieve(*, transfer_id: str, reversal_id: str) -> StripeTransferReversal:
    with stripe_errors_translated():
        reversal = stripe_client().v1.transfers.reversals.retrieve(transfer_id, reversal_id)
    return StripeTransferReversal.from_payload(reversal.to_dict())
