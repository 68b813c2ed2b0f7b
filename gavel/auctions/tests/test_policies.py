from __future__ import annotations

import pytest

from gavel.auctions import policies
from gavel.auctions.models import BuyerCustomer, Sale
from gavel.auctions.states import IllegalTransition, status_is_terminal, status_transition
from gavel.auctions.tests.factories import auction_make, user_make

pytestmark = pytest.mark.django_db


@pytest.mark.real_seller_policy
def test_seller_can_list_needs_the_seller_role_then_asks_connect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buyer = user_make()
    assert policies.seller_can_list(user=buyer) == (False, "Only sellers may list items.")
    seller = user_make(seller=True)
    monkeypatch.setattr("django.apps.apps.is_installed", lambda name: False)
    assert policies.seller_can_list(user=seller) == (True, "")
    monkeypatch.setattr("django.apps.apps.is_installed", lambda name: True)
    monkeypatch.setattr(
        policies, "import_string", lambda path: lambda *, user: (False, f"ask {path}")
    )
    assert policies.seller_can_list(user=seller) == (
        False,
        "ask gavel.connect.selectors.seller_can_list",
    )

    def missing(path: str) -> None:
        raise ImportError(path)

    monkeypatch.setattr(policies, "import_string", missing)
    assert policies.seller_can_list(user=seller) == (True, "")


def test_hold_policy() -> None:
    none = auction_make()
    held = auction_make(hold_policy="deposit")
    assert held.hold_threshold_minor == 100_000  # the settings default
    assert not policies.bidder_hold_required(auction=none, amount_minor=10**9)
    assert not policies.bidder_hold_required(auction=held, amount_minor=100_000)
    assert policies.bidder_hold_required(auction=held, amount_minor=100_001)
    assert not policies.bidder_hold_satisfied(auction=held, user=user_make(), amount_minor=100_001)


def test_illegal_transitions_are_refused_and_leave_no_history() -> None:
    auction = auction_make()
    assert not status_is_terminal(auction)
    status_transition(instance=auction, to_status="unsold", reason="test")
    assert status_is_terminal(auction)
    with pytest.raises(IllegalTransition):
        status_transition(instance=auction, to_status="sold")
    auction.refresh_from_db()
    assert auction.status == "unsold"
    assert auction.transitions.count() == 2
    assert str(auction.transitions.last()) == "active -> unsold"
    assert Sale.objects.count() == 0


def test_admin_pages_render(admin_client: object) -> None:
    from django.test import Client

    assert isinstance(admin_client, Client)
    auction = auction_make()
    customer = BuyerCustomer.objects.create(
        user=user_make(eligible=False), stripe_customer_id="cus_AdminPage0001", status="active"
    )
    for path in [
        "/admin/auctions/auction/",
        f"/admin/auctions/auction/{auction.pk}/change/",
        "/admin/auctions/sale/",
        "/admin/auctions/secondchanceoffer/",
        "/admin/auctions/paymentmethodsetup/",
        "/admin/auctions/verifiedpaymentmethod/",
        "/admin/auctions/buyercustomer/",
        f"/admin/auctions/buyercustomer/{customer.pk}/change/",
    ]:
        assert admin_client.get(path).status_code == 200, path
