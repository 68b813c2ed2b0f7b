"""The payments and payouts API: every endpoint's authorization, the error format for bad
input (and nothing written), and the happy paths the apps use."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import client_for
from gavel.payments.models import AuditLogEntry, Dispute, Order, Refund
from gavel.payments.services.charging import order_charge
from gavel.payments.services.orders import order_for_sale
from gavel.payments.tests.factories import (
    card_save,
    events_deliver,
    sale_make,
    seller_make,
    user_make,
)
from gavel.payments.tests.helpers import assert_books_clean
from gavel.users.models import User


@pytest.fixture
def world(sandbox: Any, db: None) -> dict[str, Any]:
    seller, account_id = seller_make(sandbox)
    buyer = user_make()
    card_save(sandbox, buyer, "pm_card_bypassPending")
    staff = user_make()
    User.objects.filter(pk=staff.pk).update(is_staff=True)
    staff.refresh_from_db()
    sale = sale_make(seller, buyer, 10_000)
    return {
        "seller": seller,
        "account_id": account_id,
        "buyer": buyer,
        "stranger": user_make(),
        "staff": staff,
        "sale": sale,
    }


def _paid_order(world: dict[str, Any]) -> Order:
    return order_charge(order_id=order_for_sale(sale_id=world["sale"].pk).pk)


BUYER_ENDPOINTS = [
    ("get", "/api/v1/payments/orders/{id}/", None),
    ("get", "/api/v1/payments/orders/{id}/receipt/", None),
    ("post", "/api/v1/payments/orders/{id}/retry/", {}),
    ("get", "/api/v1/payments/orders/{id}/authentication/", None),
    ("post", "/api/v1/payments/orders/{id}/authentication/complete/", {}),
    ("post", "/api/v1/payments/orders/{id}/confirm-receipt/", {}),
    ("post", "/api/v1/payments/orders/{id}/refund-requests/", {"amount_minor": 100, "reason": "x"}),
]


@pytest.mark.parametrize(("method", "path", "body"), BUYER_ENDPOINTS)
def test_buyer_endpoints_refuse_anonymous_and_other_users(
    world: dict[str, Any], method: str, path: str, body: dict[str, Any] | None
) -> None:
    order = _paid_order(world)
    url = path.format(id=order.pk)
    anonymous = getattr(client_for(None), method)(url, body, format="json")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication_error"
    stranger = getattr(client_for(world["stranger"]), method)(url, body, format="json")
    assert stranger.status_code == 404
    assert stranger.json()["error"]["code"] == "order_not_found"
    assert Refund.objects.count() == 0
    order.refresh_from_db()
    assert order.receipt_confirmed_at is None


STAFF_ENDPOINTS = [
    ("post", "/api/v1/payments/staff/orders/1/refunds/", {"amount_minor": 100, "reason": "x"}),
    ("post", "/api/v1/payments/staff/refunds/1/approve/", {}),
    ("post", "/api/v1/payments/staff/refunds/1/reject/", {"reason": "no"}),
    (
        "post",
        "/api/v1/payments/staff/disputes/1/evidence/",
        {"evidence": {"uncategorized_text": "x"}},
    ),
    ("get", "/api/v1/payments/staff/audit-log/", None),
]


@pytest.mark.parametrize(("method", "path", "body"), STAFF_ENDPOINTS)
def test_staff_endpoints_refuse_buyers(
    world: dict[str, Any], method: str, path: str, body: dict[str, Any] | None
) -> None:
    _paid_order(world)
    response = getattr(client_for(world["buyer"]), method)(path, body, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"
    assert Refund.objects.count() == 0
    assert AuditLogEntry.objects.count() == 0
    assert getattr(client_for(None), method)(path, body, format="json").status_code == 401


@pytest.mark.parametrize("path", ["/api/v1/payouts/earnings/", "/api/v1/payouts/"])
def test_seller_endpoints_refuse_non_sellers(world: dict[str, Any], path: str) -> None:
    assert client_for(world["buyer"]).get(path).status_code == 403
    assert client_for(None).get(path).status_code == 401
    assert client_for(world["seller"]).get(path).status_code == 200


def test_checkout_summary_receipt_and_confirm_receipt(world: dict[str, Any]) -> None:
    buyer_client = client_for(world["buyer"])
    assert (
        client_for(world["stranger"])
        .post("/api/v1/payments/checkout/", {"sale_id": world["sale"].pk}, format="json")
        .status_code
        == 404
    )
    response = buyer_client.post(
        "/api/v1/payments/checkout/", {"sale_id": world["sale"].pk}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["total_minor"], body["buyers_premium_minor"]) == (
        "captured",
        10_500,
        500,
    )
    assert body["lines"][0]["hammer_minor"] == 10_000
    assert "commission_minor" not in body["lines"][0]  # the seller's side is not the buyer's
    order_id = body["id"]
    listing = buyer_client.get("/api/v1/payments/orders/").json()
    assert [row["id"] for row in listing["results"]] == [order_id]
    receipt = buyer_client.get(f"/api/v1/payments/orders/{order_id}/receipt/").json()
    assert receipt["paid_minor"] == 10_500
    assert receipt["charge_id"].startswith("ch_")
    confirmed = buyer_client.post(
        f"/api/v1/payments/orders/{order_id}/confirm-receipt/", {}, format="json"
    )
    assert confirmed.json()["receipt_confirmed_at"] is not None
    earnings = client_for(world["seller"]).get("/api/v1/payouts/earnings/").json()
    assert earnings == [
        {
            "currency": "USD",
            "owed_minor": 9_000,
            "in_stripe_balance_minor": 9_000,
            "transferred_minor": 9_000,
            "commission_minor": 1_000,
        }
    ]
    assert client_for(world["staff"]).get(f"/api/v1/payments/orders/{order_id}/").status_code == 200
    assert_books_clean()


def test_bad_input_is_a_4xx_and_writes_nothing(world: dict[str, Any]) -> None:
    order = _paid_order(world)
    buyer_client = client_for(world["buyer"])
    url = f"/api/v1/payments/orders/{order.pk}/refund-requests/"
    for body, field in (
        ({"amount_minor": "100", "reason": "x"}, "amount_minor"),
        ({"amount_minor": 1.5, "reason": "x"}, "amount_minor"),
        ({"amount_minor": 0, "reason": "x"}, "amount_minor"),
        ({"amount_minor": 100}, "reason"),
        ({"amount_minor": 100, "reason": "x", "extra": 1}, "extra"),
    ):
        response = buyer_client.post(url, body, format="json")
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert field in error["fields"]
    too_much = buyer_client.post(url, {"amount_minor": 10_501, "reason": "x"}, format="json")
    assert too_much.status_code == 400
    assert too_much.json()["error"]["code"] == "amount_too_large"
    assert Refund.objects.count() == 0
    assert (
        buyer_client.post("/api/v1/payments/checkout/", {"sale_id": "x"}, format="json").status_code
        == 400
    )
    assert (
        buyer_client.post("/api/v1/payments/holds/", {"auction_id": 1}, format="json").status_code
        == 400
    )
    retry = buyer_client.post(f"/api/v1/payments/orders/{order.pk}/retry/", {}, format="json")
    assert retry.status_code == 409
    assert retry.json()["error"]["code"] == "order_not_payable"
    auth = buyer_client.get(f"/api/v1/payments/orders/{order.pk}/authentication/")
    assert auth.status_code == 409
    assert Order.objects.get().attempts.count() == 1


def test_refund_request_approved_by_staff_is_audited(world: dict[str, Any]) -> None:
    order = _paid_order(world)
    request = client_for(world["buyer"]).post(
        f"/api/v1/payments/orders/{order.pk}/refund-requests/",
        {"amount_minor": 1_050, "reason": "scratched"},
        format="json",
    )
    assert request.status_code == 201
    refund_id = request.json()["id"]
    assert request.json()["status"] == "requested"
    duplicate = client_for(world["buyer"]).post(
        f"/api/v1/payments/orders/{order.pk}/refund-requests/",
        {"amount_minor": 50, "reason": "again"},
        format="json",
    )
    assert duplicate.status_code == 409
    staff = client_for(world["staff"])
    approved = staff.post(f"/api/v1/payments/staff/refunds/{refund_id}/approve/", {}, format="json")
    assert approved.status_code == 200
    assert approved.json()["status"] == "succeeded"
    again = staff.post(f"/api/v1/payments/staff/refunds/{refund_id}/approve/", {}, format="json")
    assert again.status_code == 409
    log = staff.get("/api/v1/payments/staff/audit-log/").json()["results"]
    assert [(row["action"], row["actor_email"]) for row in log] == [
        ("refund_approve", world["staff"].email)
    ]
    issued = staff.post(
        f"/api/v1/payments/staff/orders/{order.pk}/refunds/",
        {"amount_minor": 1_000, "reason": "goodwill"},
        format="json",
    )
    assert issued.status_code == 201
    assert AuditLogEntry.objects.count() == 2
    assert_books_clean()


def test_refund_request_rejected(world: dict[str, Any]) -> None:
    order = _paid_order(world)
    refund_id = (
        client_for(world["buyer"])
        .post(
            f"/api/v1/payments/orders/{order.pk}/refund-requests/",
            {"amount_minor": 500, "reason": "changed my mind"},
            format="json",
        )
        .json()["id"]
    )
    rejected = client_for(world["staff"]).post(
        f"/api/v1/payments/staff/refunds/{refund_id}/reject/", {"reason": "policy"}, format="json"
    )
    assert rejected.json()["status"] == "rejected"
    assert AuditLogEntry.objects.get().action == "refund_reject"


def test_dispute_evidence_submitted_by_staff(world: dict[str, Any], sandbox: Any) -> None:
    order = _paid_order(world)
    sandbox.open_dispute(order.stripe_charge_id)
    events_deliver(sandbox, "charge.dispute.created")
    dispute = Dispute.objects.get()
    staff = client_for(world["staff"])
    url = f"/api/v1/payments/staff/disputes/{dispute.pk}/evidence/"
    bad = staff.post(url, {"evidence": {"card_number": "4242"}}, format="json")
    assert bad.status_code == 400
    assert AuditLogEntry.objects.count() == 0
    ok = staff.post(url, {"evidence": {"product_description": "A print, shipped."}}, format="json")
    assert ok.status_code == 200
    assert ok.json()["stripe_status"] == "under_review"
    assert ok.json()["evidence_submitted_at"] is not None
    assert AuditLogEntry.objects.get().action == "dispute_evidence_submit"
    assert (
        staff.post(
            "/api/v1/payments/staff/disputes/999/evidence/",
            {"evidence": {"uncategorized_text": "x"}},
            format="json",
        ).status_code
        == 404
    )


def test_three_d_secure_through_the_api(sandbox: Any, db: None) -> None:
    seller, _ = seller_make(sandbox)
    buyer = user_make()
    card_save(sandbox, buyer, "pm_card_authenticationRequired")
    sale = sale_make(seller, buyer, 2_000)
    client = client_for(buyer)
    order = client.post("/api/v1/payments/checkout/", {"sale_id": sale.pk}, format="json").json()
    assert order["status"] == "requires_action"
    secret = client.get(f"/api/v1/payments/orders/{order['id']}/authentication/").json()
    assert secret["client_secret"].startswith(secret["payment_intent_id"])
    sandbox.client().v1.payment_intents.confirm(
        secret["payment_intent_id"], params={"payment_method": secret["payment_method_id"]}
    )
    sandbox.complete_3ds(secret["payment_intent_id"])
    done = client.post(
        f"/api/v1/payments/orders/{order['id']}/authentication/complete/", {}, format="json"
    )
    assert done.json()["status"] == "captured"


def test_hold_through_the_api(sandbox: Any, db: None) -> None:
    from gavel.auctions.models import Auction
    from gavel.payments.tests.factories import auction_make

    seller, _ = seller_make(sandbox)
    bidder = user_make()
    card_save(sandbox, bidder, "pm_card_bypassPending")
    auction = auction_make(
        seller, hold_policy=Auction.HoldPolicy.DEPOSIT, status=Auction.Status.ACTIVE
    )
    response = client_for(bidder).post(
        "/api/v1/payments/holds/", {"auction_id": auction.pk, "amount_minor": 30_000}, format="json"
    )
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["amount_minor"]) == ("authorized", 3_000)
    missing = client_for(bidder).post(
        "/api/v1/payments/holds/", {"auction_id": 99_999, "amount_minor": 1}, format="json"
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/payments/orders/", None),
        ("post", "/api/v1/payments/checkout/", {"sale_id": 1}),
        ("post", "/api/v1/payments/holds/", {"auction_id": 1, "amount_minor": 100}),
    ],
)
def test_buyer_collection_endpoints_need_a_signed_in_user(
    db: None, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = getattr(client_for(None), method)(path, body, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert Order.objects.count() == 0
