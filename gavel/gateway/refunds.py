"""Stripe refunds (and, on destination charges, transfer reversal and application fee
refund by policy)."""

from __future__ import annotations

from typing import Any

from gavel.gateway.client import stripe_client
from gavel.gateway.errors import stripe_errors_translated
from gavel.gateway.keys import idempotency_key
from gavel.gateway.payment_types import StripeRefund


def refund_create(
    *,
    operation_id: str | int,
    charge_id: str,
    amount_minor: int,
    reverse_transfer: bool = False,
    refund_application_fee: bool = False,
    reason: str | None = None,
    metadata: dict[str, str] | None = None,
) -> StripeRefund:
    params: dict[str, Any] = {
        "charge": charge_id,
        "amount": amount_minor,
        "metadata": metadata or {},
    }
    if reverse_transfer:
        params["reverse_transfer"] = True
    if refund_application_fee:
        params["refund_application_fee"] = True
    if reason:
        params["reason"] = reason
    with stripe_errors_translated():
        refund = stripe_client().v1.refunds.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key("refund_create", operation_id)},
        )
    return StripeRefund.from_payload(refund.to_dict())


def refund_retrieve(*, refund_id: str) -> StripeRefund:
    with stripe_errors_translated():
        refund = stripe_client().v1.refunds.retrieve(refund_id)
    return StripeRefund.from_payload(refund.to_dict())


def refunds_for_charge(*, charge_id: str) -> list[StripeRefund]:
    """Refunds of one charge (the janitor finds a refund whose answer was lost)."""
    with stripe_errors_translated():
        page = stripe_client().v1.refunds.list(params={"charge": charge_id, "limit": 100})
    return [
        StripeRefund.from_payload(item)
        for item in page.to_dict().get("data") or []
        if isinstance(item, dict)
    ]


def application_fee_refund_ids(*, application_fee_id: str) -> list[str]:
    """Ids of an application fee's refunds (made by Stripe with a destination charge refund)."""
    with stripe_errors_translated():
        page = stripe_client().v1.application_fees.refunds.list(
            application_fee_id, params={"limit": 100}
        )
    return [
        str(item["id"])
        for item in page.to_dict().get("data") or []
        if isinstance(item, dict) and item.get("id")
    ]
