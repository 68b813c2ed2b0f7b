"""Stripe webhook handlers of the auctions app: SetupIntent confirmation, attached and detached
methods, deleted customers.

Each handler re-reads the SetupIntent from Stripe rather than trusting the event's copy, so
events arriving late, twice or out of order all converge on Stripe's current state.
"""

from __future__ import annotations

from gavel.auctions.services.customers import (
    buyer_customer_card_attached_apply,
    buyer_customer_deleted_apply,
)
from gavel.auctions.services.eligibility import (
    payment_method_detached_apply,
    setup_intent_event_apply,
)
from gavel.webhooks.registry import IncomingEvent, webhook_handler


@webhook_handler(
    "setup_intent.succeeded", "setup_intent.setup_failed", "setup_intent.requires_action"
)
def setup_intent_event_handle(event: IncomingEvent) -> None:
    if event.account is not None or event.object_id is None:
        return  # connected-account SetupIntents are not bidders'
    metadata = event.data_object.get("metadata") or {}
    hint = metadata.get("gavel_setup_id") if isinstance(metadata, dict) else None
    setup_intent_event_apply(setup_intent_id=event.object_id, setup_id_hint=hint)


@webhook_handler("payment_method.detached")
def payment_method_detached_handle(event: IncomingEvent) -> None:
    if event.account is None and event.object_id is not None:
        payment_method_detached_apply(payment_method_id=event.object_id)


@webhook_handler("payment_method.attached")
def payment_method_attached_handle(event: IncomingEvent) -> None:
    customer = event.data_object.get("customer")
    if event.account is None and event.object_id is not None and isinstance(customer, str):
        buyer_customer_card_attached_apply(
            stripe_customer_id=customer, payment_method_id=event.object_id
        )


@webhook_handler("customer.deleted")
def customer_deleted_handle(event: IncomingEvent) -> None:
    if event.account is None and event.object_id is not None:
        buyer_customer_deleted_apply(stripe_customer_id=event.object_id)
