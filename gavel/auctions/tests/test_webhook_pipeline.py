"""The real path: the sandbox posts SetupIntent events over HTTP to a live server, the webhook
pipeline stores them and a real Celery worker runs our handler."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from conftest import bearer, wait_for
from gavel.auctions.models import BuyerCustomer, PaymentMethodSetup, VerifiedPaymentMethod
from gavel.auctions.services.customers import CustomerImport, buyer_customers_import
from gavel.auctions.tests.factories import user_make
from gavel.gateway.setup_intents import setup_intent_confirm

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _webhooks_over_http(live_server: Any, sandbox: Any, settings: Any) -> None:
    """The sandbox posts every platform event to the live server's webhook endpoint."""

    def transport(url: str, headers: dict[str, str], body: bytes) -> int:
        return requests.post(url, data=body, headers=headers, timeout=30).status_code

    sandbox.set_webhook_transport(transport)
    endpoint = sandbox.client().v1.webhook_endpoints.create(
        params={"url": f"{live_server.url}/webhooks/stripe/", "enabled_events": ["*"]}
    )
    settings.STRIPE_WEBHOOK_SECRETS = [endpoint.secret]


def test_three_d_secure_setup_confirmed_by_webhooks_through_a_real_worker(
    live_server: Any, celery_worker_thread: Any, sandbox: Any, settings: Any
) -> None:
    _webhooks_over_http(live_server, sandbox, settings)
    user = user_make(eligible=False)
    created = requests.post(
        f"{live_server.url}/api/v1/payment-methods/setup/",
        headers={"Authorization": bearer(user)["HTTP_AUTHORIZATION"]},
        timeout=30,
    ).json()

    setup_intent_confirm(
        operation_id=created["id"],
        setup_intent_id=created["setup_intent_id"],
        payment_method_id="pm_card_authenticationRequiredOnSetup",
    )
    wait_for(lambda: PaymentMethodSetup.objects.get().status == "requires_action")
    assert not VerifiedPaymentMethod.objects.exists()

    sandbox.complete_3ds(created["setup_intent_id"])
    wait_for(lambda: VerifiedPaymentMethod.objects.filter(user=user).exists())
    setup = PaymentMethodSetup.objects.get()
    assert setup.status == "succeeded"
    assert VerifiedPaymentMethod.objects.get().setup_id == setup.pk


def test_a_card_the_portal_saves_while_both_run_is_adopted_through_a_real_worker(
    live_server: Any, celery_worker_thread: Any, sandbox: Any, settings: Any
) -> None:
    _webhooks_over_http(live_server, sandbox, settings)
    client = sandbox.client()
    remote = client.v1.customers.create(params={"email": "zoe@example.com"})
    buyer = user_make(eligible=False)
    buyer_customers_import(customers=[CustomerImport(buyer.pk, remote.id)])
    # The import's own refresh task runs on the worker: wait for it (it reads no card yet),
    # so that only the webhook can adopt the card below.
    customer = BuyerCustomer.objects.get(user=buyer)
    wait_for(lambda: BuyerCustomer.objects.get(pk=customer.pk).status == "active")
    assert not VerifiedPaymentMethod.objects.filter(user=buyer).exists()

    # The portal, still running, takes a payment that saves the buyer's card.
    payment = client.v1.payment_intents.create(
        params={
            "amount": 4200,
            "currency": "usd",
            "customer": remote.id,
            "payment_method": "pm_card_visa",
            "setup_future_usage": "off_session",
            "confirm": True,
            "return_url": "https://portal.invalid/return",
        }
    )
    wait_for(lambda: VerifiedPaymentMethod.objects.filter(user=buyer).exists())
    card = VerifiedPaymentMethod.objects.get(user=buyer)
    assert (card.stripe_payment_method_id, card.setup.stripe_payment_intent_id) == (
        payment.payment_method,
        payment.id,
    )
