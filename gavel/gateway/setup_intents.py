"""SetupIntents (usage off_session) and the payment methods they verify, and the cards saved
on a customer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from stripe import PaymentMethod
from stripe.params import SetupIntentConfirmParams, SetupIntentCreateParams

from gavel.gateway.client import stripe_client
from gavel.gateway.errors import stripe_errors_translated
from gavel.gateway.keys import idempotency_key
from gavel.gateway.payment_types import StripePaymentIntent
from gavel.gateway.types import StripePaymentMethod, StripeSetupIntent


def _id_of(value: Any) -> str | None:
    """An expandable field's id, whether Stripe sent the id or the expanded object."""
    if isinstance(value, str):
        return value
    identifier = value.get("id") if isinstance(value, dict) else getattr(value, "id", None)
    return identifier if isinstance(identifier, str) else None


def setup_intent_from_payload(payload: dict[str, Any]) -> StripeSetupIntent:
    """Our value from a SetupIntent as a plain dict (an API answer or an event's object)."""
    error = payload.get("last_setup_error") or {}
    return StripeSetupIntent(
        id=payload["id"],
        status=payload["status"],
        client_secret=payload.get("client_secret"),
        customer_id=_id_of(payload.get("customer")),
        payment_method_id=_id_of(payload.get("payment_method")),
        last_error_code=error.get("code"),
        last_error_decline_code=error.get("decline_code"),
        usage=payload.get("usage"),
        gavel_setup_id=(payload.get("metadata") or {}).get("gavel_setup_id"),
    )


def setup_intent_create(
    *, operation_id: str | int, customer_id: str, metadata: dict[str, str] | None = None
) -> StripeSetupIntent:
    """A SetupIntent for off-session use by ``customer_id``; the app confirms it."""
    params: SetupIntentCreateParams = {
        "customer": customer_id,
        "usage": "off_session",
        "metadata": metadata or {},
    }
    with stripe_errors_translated():
        intent = stripe_client().v1.setup_intents.create(
            params=params,
            options={"idempotency_key": idempotency_key("setup_intent_create", operation_id)},
        )
    return setup_intent_from_payload(intent.to_dict())


def setup_intent_retrieve(*, setup_intent_id: str) -> StripeSetupIntent:
    with stripe_errors_translated():
        intent = stripe_client().v1.setup_intents.retrieve(setup_intent_id)
    return setup_intent_from_payload(intent.to_dict())


def setup_intent_confirm(
    *, operation_id: str | int, setup_intent_id: str, payment_method_id: str, attempt: int = 0
) -> StripeSetupIntent:
    """Server-side confirmation (the apps normally confirm with the client secret)."""
    params: SetupIntentConfirmParams = {
        "payment_method": payment_method_id,
        "return_url": "https://gavel.invalid/return",
    }
    with stripe_errors_translated():
        intent = stripe_client().v1.setup_intents.confirm(
            setup_intent_id,
            params=params,
            options={
                "idempotency_key": idempotency_key(
                    "setup_intent_confirm", operation_id, attempt=attempt
                )
            },
        )
    return setup_intent_from_payload(intent.to_dict())


def payment_method_retrieve(*, payment_method_id: str) -> StripePaymentMethod:
    with stripe_errors_translated():
        method = stripe_client().v1.payment_methods.retrieve(payment_method_id)
    return _payment_method(method)


def customer_cards(*, customer_id: str) -> list[StripePaymentMethod]:
    """The cards attached to the customer now, every page."""
    with stripe_errors_translated():
        page = stripe_client().v1.customers.payment_methods.list(
            customer_id, params={"type": "card", "limit": 100}
        )
        return [_payment_method(method) for method in page.auto_paging_iter()]


def customer_setup_intents(*, customer_id: str) -> Iterator[StripeSetupIntent]:
    """The customer's SetupIntents, newest first, a page read as the caller gets to it (a
    caller that stops early reads no more pages; errors are translated as they come)."""
    with stripe_errors_translated():
        page = stripe_client().v1.setup_intents.list(params={"customer": customer_id, "limit": 100})
        for intent in page.auto_paging_iter():
            yield setup_intent_from_payload(intent.to_dict())


def customer_payment_intents(*, customer_id: str) -> Iterator[StripePaymentIntent]:
    """The customer's PaymentIntents, newest first, read like ``customer_setup_intents`` (a
    card saved by a payment, ``setup_future_usage``, has no SetupIntent)."""
    with stripe_errors_translated():
        page = stripe_client().v1.payment_intents.list(
            params={"customer": customer_id, "limit": 100}
        )
        for intent in page.auto_paging_iter():
            yield StripePaymentIntent.from_payload(intent.to_dict())


def _payment_method(method: PaymentMethod) -> StripePaymentMethod:
    card = method.card
    return StripePaymentMethod(
        id=method.id,
        type=method.type,
        customer_id=_id_of(method.customer),
        card_brand=card.brand if card else None,
        card_last4=card.last4 if card else None,
        card_exp_month=card.exp_month if card else None,
        card_exp_year=card.exp_year if card else None,
    )
