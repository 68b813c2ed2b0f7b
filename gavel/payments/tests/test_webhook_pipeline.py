"""Stripe's events through Gavel's real webhook pipeline (signed intake, storage, drain):
3-D Secure finished in the app, then a dispute, applied from webhooks alone."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from rest_framework.test import APIClient

from gavel.gateway.webhooks import signature_header
from gavel.payments.models import Order
from gavel.payments.services.charging import order_authentication_secret, order_charge
from gavel.payments.services.orders import order_for_sale
from gavel.payments.tests.factories import card_save, sale_make, seller_make, user_make
from gavel.payments.tests.helpers import assert_books_clean
from gavel.webhooks.services.drain import events_drain


def _wire(sandbox: Any) -> None:
    client = sandbox.client(settings.STRIPE_SECRET_KEY)
    client.v1.webhook_endpoints.create(
        params={
            "url": "http://testserver/webhooks/stripe/",
            "enabled_events": [
                "payment_intent.succeeded",
                "payment_intent.payment_failed",
                "payment_intent.requires_action",
                "charge.dispute.created",
                "charge.dispute.closed",
            ],
        }
    )
    api = APIClient()

    def transport(url: str, headers: dict[str, str], body: bytes) -> int:
        signed = signature_header(
            payload=body, secret=settings.STRIPE_WEBHOOK_SECRETS[0], timestamp=int(time.time())
        )
        response = api.post(
            urlsplit(url).path,
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signed,
        )
        return int(response.status_code)

    sandbox.set_webhook_transport(transport)


def test_three_d_secure_and_dispute_applied_from_webhooks(sandbox: Any, db: None) -> None:
    _wire(sandbox)
    seller, _ = seller_make(sandbox)
    buyer = user_make()
    card_save(sandbox, buyer, "pm_card_authenticationRequired")
    order = order_charge(order_id=order_for_sale(sale_id=sale_make(seller, buyer, 3_000).pk).pk)
    events_drain()
    order.refresh_from_db()
    assert order.status == Order.Status.REQUIRES_ACTION
    intent_id, _, payment_method = order_authentication_secret(order_id=order.pk, user=buyer)
    sandbox.client(settings.STRIPE_SECRET_KEY).v1.payment_intents.confirm(
        intent_id, params={"payment_method": payment_method}
    )
    sandbox.complete_3ds(intent_id)
    assert events_drain() >= 1
    order.refresh_from_db()
    assert order.status == Order.Status.CAPTURED
    sandbox.open_dispute(order.stripe_charge_id)
    events_drain()
    order.refresh_from_db()
    assert order.status == Order.Status.DISPUTED
    assert_books_clean()
