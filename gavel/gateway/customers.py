"""Stripe customers."""

from __future__ import annotations

from gavel.gateway.client import stripe_client
from gavel.gateway.errors import stripe_errors_translated
from gavel.gateway.keys import idempotency_key
from gavel.gateway.types import StripeCustomer


def customer_create(
    *, operation_id: str | int, email: str, name: str = "", metadata: dict[str, str] | None = None
) -> StripeCustomer:
    with stripe_errors_translated():
        customer = stripe_client().v1.customers.create(
            params={"email": email, "name": name, "metadata": metadata or {}},
            options={"idempotency_key": idempotency_key("customer_create", operation_id)},
        )
    return StripeCustomer(id=customer.id, email=customer.email)


def customer_retrieve(*, customer_id: str) -> StripeCustomer:
    with stripe_errors_translated():
        customer = stripe_client().v1.customers.retrieve(customer_id)
    return StripeCustomer(id=customer.id, email=customer.email)
