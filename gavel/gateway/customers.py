"""Stripe customers."""

from __future__ import annotations

from gavel.gateway.client import stripe_client
from gavel.gateway.errors import stripe_errors_translated
from gavel.gateway.keys import idempotency_key
from gavel.gateway.types import StripeCustomer


def customer_create(
    *,
    operation_id: str | int,
    email: str,
    name: str = "",
    metadata: dict[str, str] | None = None,
    attempt: int = 0,
) -> StripeCustomer:
    """``attempt``: a new customer for the same operation (the last one is gone from Stripe)."""
    with stripe_errors_translated():
        customer = stripe_client().v1.customers.create(
            params={"email": email, "name": name, "metadata": metadata or {}},
            options={
                "idempotency_key": idempotency_key("customer_create", operation_id, attempt=attempt)
            },
        )
    return StripeCustomer(id=customer.id, email=customer.email)


def customer_retrieve(*, customer_id: str) -> StripeCustomer:
    """The customer, or its ``deleted`` stub; one that never existed (in this Stripe account)
    raises ``GatewayFinalError`` with code ``resource_missing``."""
    with stripe_errors_translated():
        customer = stripe_client().v1.customers.retrieve(customer_id)
    return StripeCustomer(
        id=customer.id,
        email=getattr(customer, "email", None),  # a deleted customer's stub has none
        deleted=bool(getattr(customer, "deleted", False)),
    )
