"""The SetupIntent flow against the in-process Stripe sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from conftest import client_for
from gavel.auctions.models import BuyerCustomer, PaymentMethodSetup, VerifiedPaymentMethod
from gavel.auctions.services.bidding import bid_place
from gavel.auctions.services.eligibility import setup_intent_event_apply
from gavel.auctions.tests.factories import auction_make, user_make
from gavel.gateway.errors import GatewayCardDeclined
from gavel.gateway.setup_intents import setup_intent_confirm
from gavel.users.models import User
from gavel.webhooks.registry import IncomingEvent, handler_for

pytestmark = pytest.mark.django_db


def _deliver(sandbox: Any, event_type: str) -> None:
    """Hand the sandbox's latest event of this type to our registered handler."""
    raw = sandbox.list_events(type=event_type)[-1]
    event = IncomingEvent(
        id=raw["id"],
        type=raw["type"],
        created=raw["created"],
        livemode=raw["livemode"],
        data_object=raw["data"]["object"],
        account=raw.get("account"),
        raw=raw,
    )
    handler = handler_for(event_type)
    assert handler is not None
    handler(event)


def _start(user: User) -> dict[str, Any]:
    response = client_for(user).post("/api/v1/payment-methods/setup/")
    assert response.status_code == 201, response.json()
    body: dict[str, Any] = response.json()
    return body


def test_setup_confirmed_by_webhook_makes_the_buyer_eligible(sandbox: Any) -> None:
    user = user_make(eligible=False)
    body = _start(user)
    assert body["status"] == "requires_payment_method"
    assert body["client_secret"].startswith(f"{body['setup_intent_id']}_secret_")
    assert body["payment_method"] is None
    intent = sandbox.get_object(body["setup_intent_id"])
    customer = BuyerCustomer.objects.get(user=user)
    assert (intent["usage"], intent["customer"]) == ("off_session", customer.stripe_customer_id)
    assert intent["metadata"]["gavel_setup_id"] == str(body["id"])

    setup_intent_confirm(
        operation_id=body["id"],
        setup_intent_id=body["setup_intent_id"],
        payment_method_id="pm_card_visa",
    )
    _deliver(sandbox, "setup_intent.succeeded")
    _deliver(sandbox, "setup_intent.succeeded")  # a duplicate changes nothing
    method = VerifiedPaymentMethod.objects.get(user=user)
    assert (method.brand, method.last4, method.exp_month is not None) == ("visa", "4242", True)
    setup = PaymentMethodSetup.objects.get(pk=body["id"])
    assert list(setup.transitions.values_list("to_status", flat=True)) == [
        "creating",
        "requires_payment_method",
        "succeeded",
    ]
    listed = client_for(user).get("/api/v1/payment-methods/").json()["results"]
    assert [(m["brand"], m["last4"]) for m in listed] == [("visa", "4242")]
    assert all("number" not in m for m in listed)
    auction = auction_make()
    assert bid_place(auction_id=auction.pk, bidder=user, max_amount_minor=100, currency="USD")

    # A second setup reuses the Stripe customer.
    second = _start(user)
    assert BuyerCustomer.objects.count() == 1
    assert sandbox.get_object(second["setup_intent_id"])["customer"] == (
        customer.stripe_customer_id
    )


def test_three_d_secure_at_setup_completed_then_refreshed(sandbox: Any) -> None:
    user = user_make(eligible=False)
    body = _start(user)
    setup_intent_confirm(
        operation_id=body["id"],
        setup_intent_id=body["setup_intent_id"],
        payment_method_id="pm_card_authenticationRequiredOnSetup",
    )
    _deliver(sandbox, "setup_intent.requires_action")
    refresh = f"/api/v1/payment-methods/setup/{body['id']}/refresh/"
    pending = client_for(user).post(refresh).json()
    assert (pending["status"], pending["payment_method"]) == ("requires_action", None)
    assert pending["client_secret"] == body["client_secret"]
    assert not VerifiedPaymentMethod.objects.filter(user=user).exists()

    sandbox.complete_3ds(body["setup_intent_id"])
    done = client_for(user).post(refresh).json()
    assert (done["status"], done["client_secret"]) == ("succeeded", None)
    assert done["payment_method"]["last4"] == VerifiedPaymentMethod.objects.get(user=user).last4


def test_failed_three_d_secure_and_declined_cards_leave_the_buyer_ineligible(
    sandbox: Any,
) -> None:
    user = user_make(eligible=False)
    body = _start(user)
    setup_intent_confirm(
        operation_id=body["id"],
        setup_intent_id=body["setup_intent_id"],
        payment_method_id="pm_card_authenticationRequiredOnSetup",
    )
    sandbox.fail_3ds(body["setup_intent_id"])
    _deliver(sandbox, "setup_intent.setup_failed")
    setup = PaymentMethodSetup.objects.get(pk=body["id"])
    assert (setup.status, setup.last_error_code != "") == ("requires_payment_method", True)

    with pytest.raises(GatewayCardDeclined):
        setup_intent_confirm(
            operation_id=body["id"],
            setup_intent_id=body["setup_intent_id"],
            payment_method_id="pm_card_chargeDeclined",
            attempt=1,
        )
    _deliver(sandbox, "setup_intent.setup_failed")
    setup.refresh_from_db()
    assert (setup.status, setup.last_error_code) == ("requires_payment_method", "generic_decline")
    assert not VerifiedPaymentMethod.objects.filter(user=user).exists()


def test_stripe_outage_then_refresh_creates_the_intent_once(sandbox: Any) -> None:
    user = user_make(eligible=False)
    client_for(user).post("/api/v1/payment-methods/setup/")  # creates the customer
    sandbox.fail_requests(500, method="POST", path="/v1/setup_intents")
    response = client_for(user).post("/api/v1/payment-methods/setup/")
    assert (response.status_code, response.json()["error"]["code"]) == (503, "stripe_unavailable")
    setup = PaymentMethodSetup.objects.order_by("-id").first()
    assert setup is not None
    assert (setup.status, setup.stripe_setup_intent_id) == (
        "creating",
        None,
    )
    refreshed = client_for(user).post(f"/api/v1/payment-methods/setup/{setup.pk}/refresh/")
    assert refreshed.status_code == 200
    assert refreshed.json()["status"] == "requires_payment_method"
    again = client_for(user).post(f"/api/v1/payment-methods/setup/{setup.pk}/refresh/").json()
    assert again["setup_intent_id"] == refreshed.json()["setup_intent_id"]


def test_refresh_authorization_and_unknown_intents(sandbox: Any) -> None:
    owner, other, staff = user_make(eligible=False), user_make(), user_make(is_staff=True)
    body = _start(owner)
    path = f"/api/v1/payment-methods/setup/{body['id']}/refresh/"
    response = client_for(other).post(path)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "not_your_setup")
    assert client_for(staff).post(path).status_code == 200
    assert client_for(owner).post("/api/v1/payment-methods/setup/999999/refresh/").status_code == (
        404
    )
    assert setup_intent_event_apply(setup_intent_id="seti_not_ours") is False
    handler = handler_for("setup_intent.succeeded")
    assert handler is not None
    connected = IncomingEvent(
        id="evt_1",
        type="setup_intent.succeeded",
        created=0,
        livemode=False,
        data_object={"id": "seti_x"},
        account="acct_1",
    )
    handler(connected)  # a connected account's intent: ignored


def test_customer_creation_failure_is_a_clean_503(sandbox: Any) -> None:
    user = user_make(eligible=False)
    sandbox.fail_requests(400, method="POST", path="/v1/customers")
    response = client_for(user).post("/api/v1/payment-methods/setup/")
    assert response.status_code == 502
    assert PaymentMethodSetup.objects.count() == 0


def test_expired_or_detached_methods_do_not_make_a_bidder_eligible() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from gavel.auctions.models import Bid
    from gavel.auctions.services.bidding import bid_place
    from gavel.common.errors import ServiceError

    auction = auction_make()
    expired = user_make()
    today = timezone.now().date()
    last_month = today.replace(day=1) - timedelta(days=1)
    expired.verified_payment_methods.update(exp_year=last_month.year, exp_month=last_month.month)
    detached = user_make()
    method = detached.verified_payment_methods.get()
    handler = handler_for("payment_method.detached")
    assert handler is not None
    event = IncomingEvent(
        id="evt_detached",
        type="payment_method.detached",
        created=0,
        livemode=False,
        data_object={"id": method.stripe_payment_method_id},
    )
    handler(event)
    handler(event)  # a replay changes nothing
    method.refresh_from_db()
    assert method.detached_at is not None
    for user in (expired, detached):
        with pytest.raises(ServiceError) as raised:
            bid_place(auction_id=auction.pk, bidder=user, max_amount_minor=100, currency="USD")
        assert raised.value.code == "payment_method_required"
        assert client_for(user).get("/api/v1/payment-methods/").json()["results"] == []
    assert Bid.objects.count() == 0
    this_month = user_make()
    this_month.verified_payment_methods.update(exp_year=today.year, exp_month=today.month)
    assert bid_place(auction_id=auction.pk, bidder=this_month, max_amount_minor=100, currency="USD")


def test_re_verifying_a_card_already_verified_moves_it_to_the_new_setup(sandbox: Any) -> None:
    user = user_make(eligible=False)
    first = _start(user)
    setup_intent_confirm(
        operation_id=first["id"],
        setup_intent_id=first["setup_intent_id"],
        payment_method_id="pm_card_visa",
    )
    _deliver(sandbox, "setup_intent.succeeded")
    method = VerifiedPaymentMethod.objects.get(user=user)
    VerifiedPaymentMethod.objects.filter(pk=method.pk).update(
        brand="old", exp_year=2001, detached_at=timezone.now()
    )

    second = _start(user)
    setup_intent_confirm(
        operation_id=second["id"],
        setup_intent_id=second["setup_intent_id"],
        payment_method_id=method.stripe_payment_method_id,
    )
    refreshed = client_for(user).post(f"/api/v1/payment-methods/setup/{second['id']}/refresh/")
    assert refreshed.status_code == 200, refreshed.json()
    assert (refreshed.json()["status"], refreshed.json()["payment_method"]["last4"]) == (
        "succeeded",
        "4242",
    )
    _deliver(sandbox, "setup_intent.succeeded")  # the webhook converges too
    moved = VerifiedPaymentMethod.objects.get(user=user)
    assert (moved.pk, moved.setup_id, moved.brand, moved.detached_at) == (
        method.pk,
        second["id"],
        "visa",
        None,
    )
    assert moved.exp_year == sandbox.get_object(method.stripe_payment_method_id)["card"]["exp_year"]
    assert PaymentMethodSetup.objects.get(pk=second["id"]).status == "succeeded"


def test_a_card_recorded_for_another_user_is_refused_and_left_as_it_was(sandbox: Any) -> None:
    user, other = user_make(eligible=False), user_make()
    body = _start(user)
    intent = setup_intent_confirm(
        operation_id=body["id"],
        setup_intent_id=body["setup_intent_id"],
        payment_method_id="pm_card_visa",
    )
    assert intent.payment_method_id is not None
    others = VerifiedPaymentMethod.objects.get(user=other)
    VerifiedPaymentMethod.objects.filter(pk=others.pk).update(
        stripe_payment_method_id=intent.payment_method_id
    )
    before = list(VerifiedPaymentMethod.objects.order_by("pk").values())

    refresh = f"/api/v1/payment-methods/setup/{body['id']}/refresh/"
    response = client_for(user).post(refresh)
    assert (response.status_code, response.json()["error"]["code"]) == (
        409,
        "payment_method_in_use",
    )
    _deliver(sandbox, "setup_intent.succeeded")  # recorded on the setup, not retried forever
    assert list(VerifiedPaymentMethod.objects.order_by("pk").values()) == before
    setup = PaymentMethodSetup.objects.get(pk=body["id"])
    assert (setup.status, setup.last_error_code) == ("succeeded", "payment_method_in_use")
    again = client_for(user).post(refresh)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "payment_method_in_use")
