"""Become a seller, account links, account sessions and dashboard links through the API."""

from __future__ import annotations

from typing import Any

import pytest

from gavel.connect.models import ConnectedAccount, ConnectedAccountChange, StripeLinkRequest
from gavel.connect.tests.conftest import ACCOUNT_URL, ONBOARDING_URL
from gavel.users.models import User

pytestmark = pytest.mark.django_db

LINK_URL = "/api/v1/connect/account/onboarding-links/"
SESSION_URL = "/api/v1/connect/account/sessions/"
DASHBOARD_URL = "/api/v1/connect/account/dashboard-links/"
REFRESH_URL = "/api/v1/connect/account/refresh/"


def test_become_a_seller_creates_an_express_account_and_an_onboarding_link(
    seller: User, seller_client: Any, sandbox: Any
) -> None:
    response = seller_client.post(ONBOARDING_URL, {}, format="json")

    assert response.status_code == 201
    body = response.json()
    account = ConnectedAccount.objects.get(user=seller)
    assert body["account"]["stripe_account_id"] == account.stripe_account_id
    assert body["account"]["status"] == "onboarding"
    assert body["account"]["stripe_api"] == "v1"
    assert body["account"]["preset"] == "express"
    assert body["account"]["capabilities"] == {"card_payments": "inactive", "transfers": "inactive"}
    assert body["account"]["selling"]["can_list"] is False
    assert body["account"]["selling"]["code"] == "onboarding_incomplete"
    assert body["onboarding_link"]["link_type"] == "account_onboarding"
    assert body["onboarding_link"]["url"].startswith(sandbox.base_url)
    stripe_account = sandbox.get_object(account.stripe_account_id)
    assert stripe_account["controller"] == {
        "fees": {"payer": "application"},
        "is_controller": True,
        "losses": {"payments": "application"},
        "requirement_collection": "stripe",
        "stripe_dashboard": {"type": "express"},
        "type": "application",
    }
    assert stripe_account["type"] == "express"
    assert stripe_account["metadata"] == {
        "gavel_user_id": str(seller.pk),
        "gavel_connected_account_id": str(account.pk),
    }
    seller.refresh_from_db()
    assert seller.is_seller is True
    assert list(account.changes.values_list("source", "status_before", "status_after")) == [
        ("create", "creating", "onboarding")
    ]
    link = StripeLinkRequest.objects.get()
    assert (link.kind, link.link_type, link.succeeded) == (
        "account_link",
        "account_onboarding",
        True,
    )


def test_become_a_seller_twice_finds_the_same_account(seller_client: Any, sandbox: Any) -> None:
    first = seller_client.post(ONBOARDING_URL, {}, format="json").json()
    second = seller_client.post(ONBOARDING_URL, {}, format="json")

    assert second.status_code == 200
    assert second.json()["account"]["stripe_account_id"] == first["account"]["stripe_account_id"]
    assert ConnectedAccount.objects.count() == 1
    assert len(sandbox.client().v1.accounts.list().data) == 1


@pytest.mark.parametrize(
    ("preset", "dashboard", "fees_payer", "losses", "collection", "legacy_type"),
    [
        ("standard", "full", "account", "stripe", "stripe", "standard"),
        ("custom", "none", "application", "application", "application", "custom"),
    ],
)
def test_preset_comes_from_configuration(
    settings: Any,
    seller_client: Any,
    sandbox: Any,
    preset: str,
    dashboard: str,
    fees_payer: str,
    losses: str,
    collection: str,
    legacy_type: str,
) -> None:
    settings.CONNECT_ACCOUNT_PRESET = preset

    body = seller_client.post(ONBOARDING_URL, {}, format="json").json()

    assert body["account"]["preset"] == preset
    stripe_account = sandbox.get_object(body["account"]["stripe_account_id"])
    controller = stripe_account["controller"]
    assert controller["stripe_dashboard"]["type"] == dashboard
    assert controller["fees"]["payer"] == fees_payer
    assert controller["losses"]["payments"] == losses
    assert controller["requirement_collection"] == collection
    assert stripe_account["type"] == legacy_type


def test_unknown_preset_is_refused_before_anything_is_written(
    settings: Any, seller: User, seller_client: Any, sandbox: Any
) -> None:
    settings.CONNECT_ACCOUNT_PRESET = "platinum"

    response = seller_client.post(ONBOARDING_URL, {}, format="json")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "connect_misconfigured"
    assert ConnectedAccount.objects.count() == 0
    assert sandbox.client().v1.accounts.list().data == []


def test_anonymous_is_401_and_nothing_is_created(api_client: Any, sandbox: Any) -> None:
    response = api_client.post(ONBOARDING_URL, {}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert ConnectedAccount.objects.count() == 0
    assert sandbox.client().v1.accounts.list().data == []


def test_unknown_field_is_400_and_nothing_is_created(seller_client: Any, sandbox: Any) -> None:
    response = seller_client.post(ONBOARDING_URL, {"account_type": "custom"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"account_type": ["Unknown field."]}
    assert ConnectedAccount.objects.count() == 0
    assert sandbox.client().v1.accounts.list().data == []


def test_redirect_urls_outside_the_apps_are_refused(seller_client: Any, sandbox: Any) -> None:
    seller_client.post(ONBOARDING_URL, {}, format="json")
    links_before = StripeLinkRequest.objects.count()

    response = seller_client.post(
        LINK_URL, {"return_url": "https://evil.example/steal"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "redirect_url_not_allowed"
    assert list(response.json()["error"]["fields"]) == ["return_url"]
    assert StripeLinkRequest.objects.count() == links_before


def test_a_new_link_is_minted_each_time_with_the_apps_urls(
    seller_client: Any, sandbox: Any
) -> None:
    seller_client.post(ONBOARDING_URL, {}, format="json")
    urls = {"return_url": "gavel://seller/return", "refresh_url": "gavel://seller/refresh"}

    first = seller_client.post(LINK_URL, urls, format="json")
    second = seller_client.post(LINK_URL, urls, format="json")

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["url"] != second.json()["url"]
    assert sandbox.follow_account_link(first.json()["url"], complete=False) == urls["return_url"]
    assert sandbox.follow_account_link(first.json()["url"]) == urls["refresh_url"]  # used once


def test_custom_account_that_submitted_details_gets_an_update_link(
    settings: Any, seller: User, seller_client: Any, sandbox: Any
) -> None:
    settings.CONNECT_ACCOUNT_PRESET = "custom"
    seller_client.post(ONBOARDING_URL, {}, format="json")
    account = ConnectedAccount.objects.get(user=seller)
    sandbox.complete_onboarding(account.stripe_account_id)
    seller_client.post(REFRESH_URL, {}, format="json")

    response = seller_client.post(LINK_URL, {}, format="json")

    assert response.status_code == 201
    assert response.json()["link_type"] == "account_update"


def test_account_session_returns_a_client_secret_never_stored(
    seller_client: Any, sandbox: Any
) -> None:
    created = seller_client.post(ONBOARDING_URL, {}, format="json").json()

    response = seller_client.post(SESSION_URL, {}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["account_id"] == created["account"]["stripe_account_id"]
    assert body["client_secret"].startswith("accs_secret__")
    request = StripeLinkRequest.objects.get(kind="account_session")
    assert request.succeeded is True
    assert body["client_secret"] not in str(list(StripeLinkRequest.objects.values()))


def test_dashboard_link_needs_finished_onboarding(
    seller: User, seller_client: Any, sandbox: Any
) -> None:
    seller_client.post(ONBOARDING_URL, {}, format="json")

    refused = seller_client.post(DASHBOARD_URL, {}, format="json")

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "onboarding_incomplete"
    assert StripeLinkRequest.objects.filter(kind="login_link").count() == 0

    sandbox.complete_onboarding(ConnectedAccount.objects.get(user=seller).stripe_account_id)
    seller_client.post(REFRESH_URL, {}, format="json")
    response = seller_client.post(DASHBOARD_URL, {}, format="json")

    assert response.status_code == 201
    assert response.json()["url"].startswith("https://connect.stripe.com/express/")
    assert response.json()["link_type"] == "express_dashboard"


def test_standard_account_is_told_to_use_the_full_dashboard(
    settings: Any, seller: User, seller_client: Any, sandbox: Any
) -> None:
    settings.CONNECT_ACCOUNT_PRESET = "standard"
    seller_client.post(ONBOARDING_URL, {}, format="json")

    response = seller_client.post(DASHBOARD_URL, {}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "dashboard_unavailable"
    assert "dashboard.stripe.com" in response.json()["error"]["message"]


@pytest.mark.parametrize("url", [LINK_URL, SESSION_URL, DASHBOARD_URL, REFRESH_URL])
def test_actions_without_an_account_are_404(seller_client: Any, sandbox: Any, url: str) -> None:
    response = seller_client.post(url, {}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "no_connected_account"
    assert StripeLinkRequest.objects.count() == 0


def test_status_without_an_account_is_404(seller_client: Any) -> None:
    response = seller_client.get(ACCOUNT_URL)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "no_connected_account"


def test_status_explains_requirements_in_plain_words(
    seller: User, seller_client: Any, sandbox: Any
) -> None:
    seller_client.post(ONBOARDING_URL, {}, format="json")
    account = ConnectedAccount.objects.get(user=seller)
    deadline = sandbox.now() + 7 * 86400
    sandbox.complete_onboarding(account.stripe_account_id)
    sandbox.require_information(
        account.stripe_account_id,
        ["individual.dob.day", "individual.dob.month", "individual.dob.year", "x_new.key"],
        deadline=deadline,
    )
    seller_client.post(REFRESH_URL, {}, format="json")

    body = seller_client.get(ACCOUNT_URL).json()

    requirements = body["requirements"]
    assert requirements["currently_due"] == [
        {
            "message": "Give your date of birth.",
            "keys": ["individual.dob.day", "individual.dob.month", "individual.dob.year"],
        },
        {
            "message": "Stripe needs more information (x_new.key); open your Stripe onboarding "
            "to add it.",
            "keys": ["x_new.key"],
        },
    ]
    assert requirements["past_due"] == []
    assert requirements["due_by"] is not None
    assert body["selling"]["can_list"] is True
    assert body["selling"]["code"] == "requirements_due"
    assert body["selling"]["message"].startswith("Provide by ")
    assert body["bank"] == {"name": "STRIPE TEST BANK", "last4": "6789"}


def test_only_one_history_row_per_real_change(
    seller: User, seller_client: Any, sandbox: Any
) -> None:
    seller_client.post(ONBOARDING_URL, {}, format="json")

    seller_client.post(REFRESH_URL, {}, format="json")
    seller_client.post(REFRESH_URL, {}, format="json")

    assert ConnectedAccountChange.objects.count() == 1
