"""Stripe PaymentIntents and charges: off-session charges, manual-capture holds, capture,
cancel, and reads for the janitor and webhooks."""

from __future__ import annotations

from typing import Any

from gavel.gateway.client import account_options, stripe_client
from gavel.gateway.errors import stripe_errors_translated
from gavel.gateway.keys import idempotency_key
from gavel.gateway.payment_types import StripeCharge, StripePaymentIntent


def payment_intent_create(
    *,
    operation_id: str | int,
    amount_minor: int,
    currency: str,
    customer_id: str,
    payment_method_id: str,
    capture_manually: bool = False,
    off_session: bool = True,
    transfer_group: str | None = None,
    destination_account_id: str | None = None,
    application_fee_minor: int | None = None,
    description: str = "",
    metadata: dict[str, str] | None = None,
) -> StripePaymentIntent:
    """Create and confirm a PaymentIntent with a saved payment method.

    A decline raises ``GatewayCardDeclined`` (``requires_authentication`` when the bank asks
    for 3-D Secure); the PaymentIntent then exists in ``requires_payment_method`` and the
    error names it. ``destination_account_id`` makes a destination charge.
    """
    params: dict[str, Any] = {
        "amount": amount_minor,
        "currency": currency.lower(),
        "customer": customer_id,
        "payment_method": payment_method_id,
        "confirm": True,
        "capture_method": "manual" if capture_manually else "automatic",
        "metadata": metadata or {},
    }
    if off_session:
        params["off_session"] = True
    if description:
        params["description"] = description
    if transfer_group:
        params["transfer_group"] = transfer_group
    if destination_account_id:
        params["transfer_data"] = {"destination": destination_account_id}
        if application_fee_minor:
            params["application_fee_amount"] = application_fee_minor
    with stripe_errors_translated():
        intent = stripe_client().v1.payment_intents.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key("payment_intent_create", operation_id)},
        )
    return StripePaymentIntent.from_payload(intent.to_dict())


def payment_intent_retrieve(*, payment_intent_id: str) -> StripePaymentIntent:
    with stripe_errors_translated():
        intent = stripe_client().v1.payment_intents.retrieve(payment_intent_id)
    return StripePaymentIntent.from_payload(intent.to_dict())


def payment_intent_capture(
    *, operation_id: str | int, payment_intent_id: str, amount_minor: int | None = None
) -> StripePaymentIntent:
    """Capture an authorized PaymentIntent, all of it or ``amount_minor`` (the rest is
    released)."""
    params: dict[str, Any] = {}
    if amount_minor is not None:
        params["amount_to_capture"] = amount_minor
    with stripe_errors_translated():
        intent = stripe_client().v1.payment_intents.capture(
            payment_intent_id,
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key("payment_intent_capture", operation_id)},
        )
    return StripePaymentIntent.from_payload(intent.to_dict())


def payment_intent_cancel(
    *, operation_id: str | int, payment_intent_id: str
) -> StripePaymentIntent:
    """Cancel an intent that has not succeeded (releases an authorization)."""
    with stripe_errors_translated():
        intent = stripe_client().v1.payment_intents.cancel(
            payment_intent_id,
            params={"cancellation_reason": "requested_by_customer"},
            options={"idempotency_key": idempotency_key("payment_intent_cancel", operation_id)},
        )
    return StripePaymentIntent.from_payload(intent.to_dict())


def charge_retrieve(*, charge_id: str, account_id: str | None = None) -> StripeCharge:
    """A charge on the platform, or with ``account_id`` one on that connected account (a
    ``py_``: the payment a transfer made to it)."""
    with stripe_errors_translated():
        charge = stripe_client().v1.charges.retrieve(charge_id, options=account_options(account_id))
    return StripeCharge.from_payload(charge.to_dict())
