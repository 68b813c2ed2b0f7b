"""The seller's story through the sandbox and Gavel's real webhook endpoint and pipeline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from gavel.auctions.models import Auction
from gavel.auctions.policies import seller_can_list as auctions_seller_can_list
from gavel.connect.models import ConnectedAccount
from gavel.connect.selectors import (
    seller_account_id,
    seller_can_list,
    seller_payouts_allowed,
    seller_selling_status,
)
from gavel.connect.tests.conftest import ACCOUNT_URL, ONBOARDING_URL, ConnectWebhooks
from gavel.users.models import User
from gavel.webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


def list_an_item(client: Any) -> Any:
    now = timezone.now()
    body = {
        "title": "Brass telescope",
        "category": "instruments",
        "currency": "USD",
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(days=3)).isoformat(),
        "starting_price_minor": 1_000,
    }
    return client.post("/api/v1/auctions/create/", body, format="json")


def test_seller_onboards_sells_then_loses_selling_when_requirements_come_due(
    seller: User, seller_client: Any, sandbox: Any, connect_webhooks: ConnectWebhooks
) -> None:
    created = seller_client.post(ONBOARDING_URL, {}, format="json").json()
    stripe_account_id = created["account"]["stripe_account_id"]
    seller.refresh_from_db()
    assert seller.is_seller is True
    assert seller_can_list(user=seller) == (
        False,
        "Finish setting up your Stripe account: Choose the category of goods you sell. "
        "Give your website, or describe what you sell. Say whether you sell as an individual "
        "or as a company. (and 3 more)",
    )

    # The seller follows the link and finishes Stripe-hosted onboarding.
    assert (
        sandbox.follow_account_link(created["onboarding_link"]["url"])
        == "https://app.gavel.example/seller/onboarding/return"
    )
    assert set(connect_webhooks.answers) == {200}
    assert ConnectedAccount.objects.get().status == "onboarding"  # stored, not yet processed
    assert connect_webhooks.process() == ["processed"] * 4

    account = ConnectedAccount.objects.get()
    assert account.status == "enabled"
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (
        True,
        True,
        True,
    )
    assert account.capabilities == {"card_payments": "active", "transfers": "active"}
    assert account.requirements_currently_due == []
    assert (account.bank_name, account.bank_last4) == ("STRIPE TEST BANK", "6789")
    assert seller_can_list(user=seller) == (True, "")
    assert auctions_seller_can_list(user=seller) == (True, "")
    assert seller_payouts_allowed(user=seller) is True
    assert seller_account_id(user=seller) == stripe_account_id
    assert list_an_item(seller_client).status_code == 201
    # The external account event came first: only the first of the four changed the record.
    assert list(
        account.changes.values_list("source", "stripe_event_type", "status_before", "status_after")
    ) == [
        ("create", "", "creating", "onboarding"),
        ("event", "account.external_account.created", "onboarding", "enabled"),
    ]

    # Stripe needs the seller's identity document now, and it is overdue.
    sandbox.advance(60)
    sandbox.require_information(
        stripe_account_id, ["individual.verification.document"], past_due=True
    )
    assert connect_webhooks.process() == ["processed"] * 3

    account.refresh_from_db()
    assert account.status == "restricted"
    assert account.requirements_past_due == ["individual.verification.document"]
    assert account.disabled_reason == "requirements.past_due"
    refusal = (
        False,
        "Stripe paused selling until you provide: Give your identity document (a photo of an ID).",
    )
    assert seller_can_list(user=seller) == refusal
    assert auctions_seller_can_list(user=seller) == refusal
    assert seller_payouts_allowed(user=seller) is False
    refused = list_an_item(seller_client)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "seller_not_allowed"
    assert refused.json()["error"]["message"] == refusal[1]
    assert Auction.objects.count() == 1  # the refused listing wrote nothing
    status = seller_client.get(ACCOUNT_URL).json()
    assert status["selling"]["code"] == "requirements_past_due"
    assert status["requirements"]["disabled_reason_message"] == (
        "Stripe paused your account because information is overdue."
    )

    # The seller provides it: onboarding again, selling again.
    link = seller_client.post("/api/v1/connect/account/onboarding-links/", {}, format="json")
    sandbox.follow_account_link(link.json()["url"])
    connect_webhooks.process()
    assert seller_selling_status(user=seller).code == "ok"


def test_a_late_older_account_updated_never_moves_the_record_backwards(
    seller: User, seller_client: Any, sandbox: Any, connect_webhooks: ConnectWebhooks
) -> None:
    created = seller_client.post(ONBOARDING_URL, {}, format="json").json()
    stripe_account_id = created["account"]["stripe_account_id"]
    sandbox.complete_onboarding(stripe_account_id)  # account.updated at T: enabled
    sandbox.advance(120)
    sandbox.require_information(stripe_account_id, ["external_account"], past_due=True)  # T+120
    older, newer = WebhookEvent.objects.filter(event_type="account.updated").order_by("id")
    assert newer.stripe_created_at > older.stripe_created_at

    # The newer event is processed first; the older one arrives late.
    from gavel.webhooks.services import event_process

    assert event_process(event_pk=newer.pk) == "processed"
    account = ConnectedAccount.objects.get()
    assert account.status == "restricted"
    history_count = account.changes.count()

    # Stripe's snapshot in the late event says "enabled"; Gavel keeps the newer state.
    assert older.payload.count('"charges_enabled": true') == 1
    assert event_process(event_pk=older.pk) == "processed"

    account.refresh_from_db()
    assert account.status == "restricted"
    assert account.charges_enabled is False
    assert account.requirements_past_due == ["external_account"]
    assert account.changes.count() == history_count
    assert seller_can_list(user=seller)[0] is False


def test_deauthorization_is_terminal_and_later_events_change_nothing(
    seller: User, seller_client: Any, sandbox: Any, connect_webhooks: ConnectWebhooks
) -> None:
    created = seller_client.post(ONBOARDING_URL, {}, format="json").json()
    stripe_account_id = created["account"]["stripe_account_id"]
    sandbox.complete_onboarding(stripe_account_id)
    connect_webhooks.process()
    assert seller_can_list(user=seller)[0] is True

    sandbox.deauthorize(stripe_account_id)
    assert connect_webhooks.process() == ["processed"]

    account = ConnectedAccount.objects.get()
    assert account.status == "deauthorized"
    assert (account.charges_enabled, account.payouts_enabled) == (False, False)
    assert seller_selling_status(user=seller).code == "deauthorized"
    assert seller_account_id(user=seller) is None
    assert seller_payouts_allowed(user=seller) is False
    history = account.changes.count()

    again = seller_client.post(ONBOARDING_URL, {}, format="json")
    link = seller_client.post("/api/v1/connect/account/onboarding-links/", {}, format="json")
    refresh = seller_client.post("/api/v1/connect/account/refresh/", {}, format="json")

    assert (again.status_code, again.json()["error"]["code"]) == (409, "account_deauthorized")
    assert (link.status_code, link.json()["error"]["code"]) == (409, "account_deauthorized")
    assert refresh.status_code == 200
    assert refresh.json()["status"] == "deauthorized"
    assert account.changes.count() == history
