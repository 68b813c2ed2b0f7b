"""Wrong users on the payments and payouts API: the order's own seller, another buyer,
another seller, a non-staff member. Each is refused and nothing changes."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import client_for
from gavel.auctions.models import Sale
from gavel.payments.models import AuditLogEntry, Order, Refund, SellerTransfer
from gavel.payments.services.charging import order_charge
from gavel.payments.services.orders import order_for_sale
from gavel.payments.services.transfers import order_receipt_confirm
from gavel.payments.tests.factories import card_save, sale_make, seller_make, user_make
from gavel.payments.tests.test_apis import BUYER_ENDPOINTS
from gavel.payouts.models import Payout
from gavel.payouts.services import payout_run
from gavel.users.models import User


@pytest.fixture
def world(sandbox: Any, db: None) -> dict[str, Any]:
    seller, account_id = seller_make(sandbox)
    buyer = user_make()
    card_save(sandbox, buyer, "pm_card_bypassPending")
    staff = user_make()
    User.objects.filter(pk=staff.pk).update(is_staff=True)
    staff.refresh_from_db()
    return {
        "seller": seller,
        "account_id": account_id,
        "buyer": buyer,
        "stranger": user_make(),
        "staff": staff,
        "sale": sale_make(seller, buyer, 10_000),
    }


def _paid_order(world: dict[str, Any]) -> Order:
    return order_charge(order_id=order_for_sale(sale_id=world["sale"].pk).pk)


def _order_state(order: Order) -> tuple[Any, ...]:
    order.refresh_from_db()
    return (
        order.status,
        order.captured_minor,
        order.refunded_minor,
        order.receipt_confirmed_at,
        SellerTransfer.objects.filter(line__order=order).count(),
        Refund.objects.count(),
    )


@pytest.mark.parametrize(("method", "path", "body"), BUYER_ENDPOINTS)
def test_buyer_endpoints_refuse_the_orders_own_seller(
    world: dict[str, Any], method: str, path: str, body: dict[str, Any] | None
) -> None:
    """The seller must not read the buyer's order, confirm receipt (releasing their own
    transfer early), refund it or fetch its client secret."""
    order = _paid_order(world)
    before = _order_state(order)
    response = getattr(client_for(world["seller"]), method)(
        path.format(id=order.pk), body, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "order_not_found"
    assert _order_state(order) == before


def test_order_list_shows_no_one_else_the_buyers_orders(world: dict[str, Any]) -> None:
    order = _paid_order(world)
    assert [
        row["id"]
        for row in client_for(world["buyer"]).get("/api/v1/payments/orders/").json()["results"]
    ] == [order.pk]
    for user in (world["stranger"], world["seller"]):
        assert client_for(user).get("/api/v1/payments/orders/").json()["results"] == []


@pytest.mark.parametrize("who", ["stranger", "seller", "staff"])
def test_checkout_of_another_members_sale_is_404_and_charges_nothing(
    world: dict[str, Any], who: str
) -> None:
    response = client_for(world[who]).post(
        "/api/v1/payments/checkout/", {"sale_id": world["sale"].pk}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "sale_not_found"
    assert Order.objects.count() == 0
    assert Sale.objects.get(pk=world["sale"].pk).status == world["sale"].status


@pytest.mark.parametrize("who", ["seller", "stranger"])
def test_staff_refund_actions_refuse_non_staff_and_leave_the_refund_requested(
    world: dict[str, Any], who: str
) -> None:
    order = _paid_order(world)
    refund_id = (
        client_for(world["buyer"])
        .post(
            f"/api/v1/payments/orders/{order.pk}/refund-requests/",
            {"amount_minor": 500, "reason": "scratched"},
            format="json",
        )
        .json()["id"]
    )
    client = client_for(world[who])
    for path, body in [
        (f"/api/v1/payments/staff/refunds/{refund_id}/approve/", {}),
        (f"/api/v1/payments/staff/refunds/{refund_id}/reject/", {"reason": "no"}),
        (
            f"/api/v1/payments/staff/orders/{order.pk}/refunds/",
            {"amount_minor": 100, "reason": "x"},
        ),
    ]:
        response = client.post(path, body, format="json")
        assert (response.status_code, response.json()["error"]["type"]) == (
            403,
            "permission_error",
        ), path
    assert client.get("/api/v1/payments/staff/audit-log/").status_code == 403
    assert list(Refund.objects.values_list("pk", "status")) == [(refund_id, "requested")]
    assert AuditLogEntry.objects.count() == 0
    order.refresh_from_db()
    assert order.refunded_minor == 0


def test_a_seller_sees_only_their_own_earnings_and_payouts(
    world: dict[str, Any], sandbox: Any
) -> None:
    order = _paid_order(world)
    order_receipt_confirm(order_id=order.pk, user=world["buyer"])
    own = client_for(world["seller"])
    assert own.get("/api/v1/payouts/earnings/").json()[0]["owed_minor"] == 9_000
    payout_run()
    assert Payout.objects.count() == 1
    assert len(own.get("/api/v1/payouts/").json()["results"]) == 1

    other_seller, _ = seller_make(sandbox)
    other = client_for(other_seller)
    assert other.get("/api/v1/payouts/earnings/").json() == []
    assert other.get("/api/v1/payouts/").json()["results"] == []
