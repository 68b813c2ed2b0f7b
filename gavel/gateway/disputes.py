"""Stripe disputes: read one, submit evidence."""

from __future__ import annotations

from gavel.gateway.client import stripe_client
from gavel.gateway.errors import stripe_errors_translated
from gavel.gateway.keys import idempotency_key
from gavel.gateway.payment_types import StripeDispute


def dispute_retrieve(*, dispute_id: str) -> StripeDispute:
    with stripe_errors_translated():
        dispute = stripe_client().v1.disputes.retrieve(dispute_id)
    return StripeDispute.from_payload(dispute.to_dict())


def dispute_evidence_submit(
    *, operation_id: str | int, dispute_id: str, evidence: dict[str, str], submit: bool = True
) -> StripeDispute:
    with stripe_errors_translated():
        dispute = stripe_client().v1.disputes.update(
            dispute_id,
            params={"evidence": evidence, "submit": submit},  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key("dispute_evidence", operation_id)},
        )
    return StripeDispute.from_payload(dispute.to_dict())


def disputes_for_charge(*, charge_id: str) -> list[StripeDispute]:
    """Disputes of one charge (re-read when a webhook was lost)."""
    with stripe_errors_translated():
        page = stripe_client().v1.disputes.list(params={"charge": charge_id, "limit": 100})
    return [
        StripeDispute.from_payload(item)
        for item in page.to_dict().get("data") or []
        if isinstance(item, dict)
    ]
