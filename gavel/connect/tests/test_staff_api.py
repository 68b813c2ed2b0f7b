"""Who sees what: a seller only their own account, staff every account."""

from __future__ import annotations

from typing import Any

import pytest

from gavel.connect.models import ConnectedAccount
from gavel.connect.tests.conftest import ACCOUNT_URL, ONBOARDING_URL, client_for
from gavel.users.models import User

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/connect/accounts/"


def detail_url(account_id: int) -> str:
    return f"/api/v1/connect/accounts/{account_id}/"


def refresh_url(account_id: int) -> str:
    return f"/api/v1/connect/accounts/{account_id}/refresh/"


@pytest.fixture
def two_sellers(make_user: Any, sandbox: Any) -> tuple[ConnectedAccount, ConnectedAccount]:
    accounts = []
    for email in ("one@example.com", "two@example.com"):
        user = make_user(email)
        client_for(user).post(ONBOARDING_URL, {}, format="json")
        accounts.append(ConnectedAccount.objects.get(user=user))
    return accounts[0], accounts[1]


def test_a_seller_sees_only_their_own_account(two_sellers: Any) -> None:
    one, two = two_sellers

    body = client_for(one.user).get(ACCOUNT_URL).json()

    assert body["stripe_account_id"] == one.stripe_account_id
    assert two.stripe_account_id not in str(body)


@pytest.mark.parametrize("method_and_url", ["get_list", "get_detail", "post_refresh"])
def test_a_seller_cannot_use_staff_endpoints(two_sellers: Any, method_and_url: str) -> None:
    one, two = two_sellers
    client = client_for(one.user)
    synced_before = ConnectedAccount.objects.get(pk=two.pk).synced_at

    response = {
        "get_list": lambda: client.get(LIST_URL),
        "get_detail": lambda: client.get(detail_url(two.pk)),
        "post_refresh": lambda: client.post(refresh_url(two.pk), {}, format="json"),
    }[method_and_url]()

    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"
    assert ConnectedAccount.objects.get(pk=two.pk).synced_at == synced_before


@pytest.mark.parametrize("url", [LIST_URL, detail_url(1), ACCOUNT_URL])
def test_anonymous_is_401(api_client: Any, url: str) -> None:
    response = api_client.get(url)

    assert response.status_code == 401


def test_staff_list_every_account_with_a_dashboard_link(staff_user: User, two_sellers: Any) -> None:
    one, two = two_sellers

    body = client_for(staff_user).get(LIST_URL).json()

    assert [item["stripe_account_id"] for item in body["results"]] == [
        two.stripe_account_id,
        one.stripe_account_id,
    ]
    assert body["results"][0]["user_email"] == "two@example.com"
    assert body["results"][0]["dashboard_url"] == (
        f"https://dashboard.stripe.com/test/connect/accounts/{two.stripe_account_id}"
    )


def test_staff_see_history_and_can_refresh(
    staff_user: User, two_sellers: Any, sandbox: Any
) -> None:
    one, _ = two_sellers
    sandbox.complete_onboarding(one.stripe_account_id)
    client = client_for(staff_user)

    refreshed = client.post(refresh_url(one.pk), {}, format="json")
    detail = client.get(detail_url(one.pk)).json()

    assert refreshed.status_code == 200
    assert refreshed.json()["status"] == "enabled"
    assert [(h["source"], h["status_after"]) for h in detail["history"]] == [
        ("refresh", "enabled"),
        ("create", "onboarding"),
    ]
    assert detail["history"][0]["changed_fields"]["charges_enabled"] == [False, True]


def test_unknown_account_is_404_for_staff(staff_user: User, two_sellers: Any) -> None:
    client = client_for(staff_user)
    missing = max(account.pk for account in two_sellers) + 100

    assert client.get(detail_url(missing)).status_code == 404
    response = client.post(refresh_url(missing), {}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (
        404,
        "no_connected_account",
    )


def test_live_accounts_link_to_the_live_dashboard(two_sellers: Any) -> None:
    from gavel.connect.selectors import stripe_dashboard_url

    one, _ = two_sellers
    one.livemode = True

    assert stripe_dashboard_url(account=one) == (
        f"https://dashboard.stripe.com/connect/accounts/{one.stripe_account_id}"
    )
    assert stripe_dashboard_url(account=ConnectedAccount(preset="express")) == ""


def test_admin_pages_render(admin_client: Any, two_sellers: Any) -> None:
    one, _ = two_sellers

    listing = admin_client.get("/admin/connect/connectedaccount/")
    page = admin_client.get(f"/admin/connect/connectedaccount/{one.pk}/change/")
    links = admin_client.get("/admin/connect/stripelinkrequest/")

    assert listing.status_code == 200
    assert f"/test/connect/accounts/{one.stripe_account_id}" in listing.content.decode()
    assert page.status_code == 200
    assert "create" in page.content.decode()
    assert links.status_code == 200
    assert admin_client.get("/admin/connect/connectedaccount/add/").status_code == 403
