from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_sandbox import Sandbox

from .conftest import DAY, T0, Hooks, balance_total, body_of, bt_sum


def test_payment_intent_automatic_capture_and_balance(sb: Sandbox, client: Any) -> None:
    pi = client.v1.payment_intents.create(
        params={
            "amount": 10000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "expand": ["latest_charge.balance_transaction"],
        }
    )
    assert pi.status == "succeeded"
    assert pi.amount_received == 10000
    assert pi.client_secret.startswith(pi.id + "_secret_")
    ch = pi.latest_charge
    assert ch.id.startswith("ch_")
    assert ch.captured
    assert ch.paid
    bt = ch.balance_transaction
    assert bt.id.startswith("txn_")
    assert bt.fee == 320  # 2.9% of 100.00 + 0.30
    assert bt.net == 9680
    assert bt.status == "pending"
    assert pi.payment_method.startswith("pm_")
    assert pi.payment_method != "pm_card_visa"
    bal = client.v1.balance.retrieve()
    assert bal.pending[0].amount == 9680
    assert bal.available[0].amount == 0
    sb.advance(2 * DAY)
    bal = client.v1.balance.retrieve()
    assert bal.available[0].amount == 9680
    assert bal.pending[0].amount == 0
    assert client.v1.balance_transactions.retrieve(bt.id).status == "available"
    [available] = sb.list_events("balance.available")
    assert available["data"]["object"]["available"][0]["amount"] == 9680
    assert available["created"] == T0 + 2 * DAY


def test_separate_confirm_and_statuses(client: Any) -> None:
    pi = client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd"})
    assert pi.status == "requires_payment_method"
    pi = client.v1.payment_intents.update(pi.id, params={"payment_method": "pm_card_mastercard"})
    assert pi.status == "requires_confirmation"
    pi = client.v1.payment_intents.confirm(pi.id)
    assert pi.status == "succeeded"
    ch = client.v1.charges.retrieve(pi.latest_charge)
    assert ch.payment_method_details.card.brand == "mastercard"
    assert ch.payment_method_details.card.last4 == "4444"
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.payment_intents.confirm(pi.id)
    assert e.value.code == "payment_intent_unexpected_state"


def test_manual_capture_partial(sb: Sandbox, client: Any) -> None:
    pi = client.v1.payment_intents.create(
        params={
            "amount": 5000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "capture_method": "manual",
            "confirm": True,
        }
    )
    assert pi.status == "requires_capture"
    assert pi.amount_capturable == 5000
    ch = client.v1.charges.retrieve(pi.latest_charge)
    assert ch.captured is False
    assert ch.balance_transaction is None
    pi = client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 3000})
    assert pi.status == "succeeded"
    assert pi.amount_received == 3000
    ch = client.v1.charges.retrieve(pi.latest_charge)
    assert ch.amount_captured == 3000
    assert ch.amount_refunded == 2000
    assert not ch.refunded
    assert balance_total(sb, None) == 3000 - (87 + 30)
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.refunds.create(params={"charge": ch.id, "amount": 3001})
    assert e.value.code == "amount_too_large"
    re = client.v1.refunds.create(params={"charge": ch.id})
    assert re.amount == 3000
    ch = client.v1.charges.retrieve(pi.latest_charge)
    assert ch.refunded is True
    assert ch.amount_refunded == 5000


def test_authorization_expires(sb: Sandbox, client: Any, hooks: Hooks) -> None:
    client.v1.webhook_endpoints.create(params={"url": "https://h.test/", "enabled_events": ["*"]})
    pi = client.v1.payment_intents.create(
        params={
            "amount": 5000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "capture_method": "manual",
            "confirm": True,
        }
    )
    sb.advance(7 * DAY - 1)
    assert client.v1.payment_intents.retrieve(pi.id).status == "requires_capture"
    sb.advance(1)
    pi = client.v1.payment_intents.retrieve(pi.id)
    assert pi.status == "canceled"
    assert pi.cancellation_reason == "automatic"
    assert "charge.expired" in hooks.types()
    assert "payment_intent.canceled" in hooks.types()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.capture(pi.id)


def test_cancel_releases_authorization(client: Any) -> None:
    pi = client.v1.payment_intents.create(
        params={
            "amount": 5000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "capture_method": "manual",
            "confirm": True,
        }
    )
    pi = client.v1.payment_intents.cancel(
        pi.id, params={"cancellation_reason": "requested_by_customer"}
    )
    assert pi.status == "canceled"
    assert pi.canceled_at
    assert client.v1.charges.retrieve(pi.latest_charge).refunded is True
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.payment_intents.cancel(pi.id)
    assert "status of canceled" in str(e.value.user_message)


def test_decline_is_402_with_payment_intent(client: Any) -> None:
    with pytest.raises(stripe.CardError) as e:
        client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "payment_method": "pm_card_chargeDeclinedInsufficientFunds",
                "confirm": True,
            }
        )
    err = e.value
    assert err.http_status == 402
    assert err.code == "card_declined"
    body = body_of(err)
    assert body["decline_code"] == "insufficient_funds"
    assert body["type"] == "card_error"
    assert body["doc_url"]
    assert body["request_log_url"]
    pi = body["payment_intent"]
    assert pi["status"] == "requires_payment_method"
    assert pi["last_payment_error"]["decline_code"] == "insufficient_funds"
    assert err.headers is not None
    assert err.headers["request-id"].startswith("req_")
    ch = client.v1.charges.retrieve(pi["latest_charge"])
    assert ch.status == "failed"
    assert ch.failure_code == "card_declined"
    # retry with a good card on the same intent
    ok = client.v1.payment_intents.confirm(pi["id"], params={"payment_method": "pm_card_visa"})
    assert ok.status == "succeeded"


def test_generic_decline(client: Any) -> None:
    with pytest.raises(stripe.CardError) as e:
        client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "payment_method": "pm_card_chargeDeclined",
                "confirm": True,
            }
        )
    assert body_of(e.value)["decline_code"] == "generic_decline"


def test_3ds_on_every_payment(sb: Sandbox, client: Any, hooks: Hooks) -> None:
    client.v1.webhook_endpoints.create(params={"url": "https://h.test/", "enabled_events": ["*"]})
    pi = client.v1.payment_intents.create(
        params={
            "amount": 1500,
            "currency": "usd",
            "payment_method": "pm_card_authenticationRequired",
            "confirm": True,
            "return_url": "https://shop.test/return",
        }
    )
    assert pi.status == "requires_action"
    assert pi.next_action.type == "redirect_to_url"
    assert "payment_intent.requires_action" in hooks.types()
    out = sb.complete_3ds(pi.id)
    assert out["status"] == "succeeded"
    pi2 = client.v1.payment_intents.create(
        params={
            "amount": 1500,
            "currency": "usd",
            "payment_method": "pm_card_authenticationRequired",
            "confirm": True,
        }
    )
    assert pi2.next_action.type == "use_stripe_sdk"
    sb.fail_3ds(pi2.id)
    pi2 = client.v1.payment_intents.retrieve(pi2.id)
    assert pi2.status == "requires_payment_method"
    assert pi2.last_payment_error.code == "payment_intent_authentication_failure"


def test_off_session_authentication_required(client: Any) -> None:
    cus = client.v1.customers.create(params={"email": "x@example.com"})
    pm = client.v1.payment_methods.attach(
        "pm_card_authenticationRequired", params={"customer": cus.id}
    )
    with pytest.raises(stripe.CardError) as e:
        client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "customer": cus.id,
                "payment_method": pm.id,
                "off_session": True,
                "confirm": True,
            }
        )
    assert e.value.code == "authentication_required"
    body = body_of(e.value)
    assert body["decline_code"] == "authentication_required"
    assert body["payment_intent"]["status"] == "requires_payment_method"


def test_setup_then_off_session(sb: Sandbox, client: Any, hooks: Hooks) -> None:
    client.v1.webhook_endpoints.create(params={"url": "https://h.test/", "enabled_events": ["*"]})
    cus = client.v1.customers.create(params={"name": "Bidder"})
    si = client.v1.setup_intents.create(
        params={
            "customer": cus.id,
            "payment_method": "pm_card_authenticationRequiredOnSetup",
            "confirm": True,
            "usage": "off_session",
        }
    )
    assert si.status == "requires_action"
    assert si.usage == "off_session"
    sb.complete_3ds(si.id)
    si = client.v1.setup_intents.retrieve(si.id)
    assert si.status == "succeeded"
    assert {
        "setup_intent.created",
        "setup_intent.requires_action",
        "setup_intent.succeeded",
    } <= set(hooks.types())
    pms = client.v1.customers.payment_methods.list(cus.id)
    assert [p.id for p in pms.data] == [si.payment_method]
    pi = client.v1.payment_intents.create(
        params={
            "amount": 2500,
            "currency": "usd",
            "customer": cus.id,
            "payment_method": si.payment_method,
            "off_session": True,
            "confirm": True,
        }
    )
    assert pi.status == "succeeded"
    # on-session payment with that card still asks for authentication
    pi = client.v1.payment_intents.create(
        params={
            "amount": 2500,
            "currency": "usd",
            "customer": cus.id,
            "payment_method": si.payment_method,
            "confirm": True,
        }
    )
    assert pi.status == "requires_action"


def test_setup_failures(sb: Sandbox, client: Any) -> None:
    cus = client.v1.customers.create()
    si = client.v1.setup_intents.create(
        params={"customer": cus.id, "payment_method": "pm_card_authenticationRequired"}
    )
    assert si.status == "requires_confirmation"
    si = client.v1.setup_intents.confirm(si.id)
    assert si.status == "requires_action"
    sb.fail_3ds(si.id)
    si = client.v1.setup_intents.retrieve(si.id)
    assert si.status == "requires_payment_method"
    assert si.last_setup_error.code == "setup_intent_authentication_failure"
    with pytest.raises(stripe.CardError) as e:
        client.v1.setup_intents.confirm(si.id, params={"payment_method": "pm_card_chargeDeclined"})
    assert body_of(e.value)["setup_intent"]["status"] == "requires_payment_method"
    si = client.v1.setup_intents.cancel(si.id, params={"cancellation_reason": "abandoned"})
    assert si.status == "canceled"


def test_payment_methods_attach_detach(client: Any) -> None:
    cus = client.v1.customers.create(params={"email": "a@example.com"})
    pm = client.v1.payment_methods.create(
        params={"type": "card", "card": {"token": "tok_visa"}, "metadata": {"k": "v"}}
    )
    assert pm.card.last4 == "4242"
    assert pm.card.brand == "visa"
    assert pm.card.fingerprint
    assert "number" not in pm.card
    pm = client.v1.payment_methods.attach(pm.id, params={"customer": cus.id})
    assert pm.customer == cus.id
    listed = client.v1.payment_methods.list(params={"customer": cus.id, "type": "card"})
    assert [p.id for p in listed.data] == [pm.id]
    got = client.v1.customers.payment_methods.retrieve(cus.id, pm.id)
    assert got.id == pm.id
    with pytest.raises(stripe.CardError):
        client.v1.payment_methods.attach("pm_card_chargeDeclined", params={"customer": cus.id})
    pm = client.v1.payment_methods.detach(pm.id)
    assert pm.customer is None
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd", "payment_method": pm.id, "confirm": True}
        )
    assert "may not be used again" in str(e.value.user_message)


def test_customer_crud_and_metadata(client: Any) -> None:
    cus = client.v1.customers.create(
        params={"email": "m@example.com", "metadata": {"a": "1", "b": "2"}}
    )
    cus = client.v1.customers.update(cus.id, params={"metadata": {"a": "", "c": "3"}})
    assert cus.metadata.to_dict() == {"b": "2", "c": "3"}
    cus = client.v1.customers.update(cus.id, params={"metadata": ""})
    assert cus.metadata.to_dict() == {}
    found = client.v1.customers.list(params={"email": "m@example.com"})
    assert [c.id for c in found.data] == [cus.id]
    deleted = client.v1.customers.delete(cus.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.customers.update(cus.id, params={"name": "x"})
    assert e.value.http_status == 404
    assert e.value.code == "resource_missing"


def test_dispute_from_test_card_and_lost(sb: Sandbox, client: Any, hooks: Hooks) -> None:
    client.v1.webhook_endpoints.create(params={"url": "https://h.test/", "enabled_events": ["*"]})
    pi = client.v1.payment_intents.create(
        params={
            "amount": 10000,
            "currency": "usd",
            "payment_method": "pm_card_createDispute",
            "confirm": True,
        }
    )
    disputes = client.v1.disputes.list(params={"payment_intent": pi.id})
    assert len(disputes.data) == 1
    dp = disputes.data[0]
    assert dp.status == "needs_response"
    assert dp.amount == 10000
    assert dp.balance_transactions[0].net == -11500
    assert {"charge.dispute.created", "charge.dispute.funds_withdrawn"} <= set(hooks.types())
    assert client.v1.charges.retrieve(pi.latest_charge).disputed is True
    dp = client.v1.disputes.update(
        dp.id, params={"evidence": {"uncategorized_text": "delivered"}, "metadata": {"x": "1"}}
    )
    assert dp.status == "under_review"
    dp = client.v1.disputes.close(dp.id)
    assert dp.status == "lost"
    assert "charge.dispute.closed" in hooks.types()
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.refunds.create(params={"payment_intent": pi.id})
    assert e.value.code == "charge_disputed"
    assert bt_sum(sb, None) == balance_total(sb, None) == 10000 - 320 - 10000 - 1500


def test_dispute_won_via_control(sb: Sandbox, client: Any) -> None:
    pi = client.v1.payment_intents.create(
        params={
            "amount": 10000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    dp = sb.open_dispute(pi.latest_charge, "product_not_received")
    assert balance_total(sb, None) == 9680 - 11500
    sb.close_dispute(dp["id"], "won")
    dp = client.v1.disputes.retrieve(dp["id"])
    assert dp.status == "won"
    assert len(dp.balance_transactions) == 2
    assert balance_total(sb, None) == 9680


def test_bypass_pending_and_processing_mode(hooks: Hooks) -> None:
    sb = Sandbox(start_time=1_760_000_000, webhook_transport=hooks, card_processing_seconds=60)
    client: Any = sb.client()
    pi = client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_bypassPending",
            "confirm": True,
        }
    )
    assert pi.status == "processing"
    sb.advance(60)
    pi = client.v1.payment_intents.retrieve(pi.id)
    assert pi.status == "succeeded"
    assert client.v1.balance.retrieve().available[0].amount == 1000 - 59


def test_zero_decimal_fee(client: Any) -> None:
    pi = client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "jpy",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "expand": ["latest_charge.balance_transaction"],
        }
    )
    assert pi.latest_charge.balance_transaction.fee == 29  # round(1000*2.9%) + 0 (30c -> 0 JPY)


def test_amount_too_small(client: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.payment_intents.create(params={"amount": 10, "currency": "usd"})
    assert e.value.code == "amount_too_small"
    assert e.value.param == "amount"


def test_refund_fails_later(sb: Sandbox, client: Any) -> None:
    pi = client.v1.payment_intents.create(
        params={
            "amount": 3000,
            "currency": "usd",
            "payment_method": "pm_card_refundFail",
            "confirm": True,
        }
    )
    re = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1000})
    assert re.status == "succeeded"
    assert balance_total(sb, None) == 3000 - 117 - 1000
    sb.advance(60)
    re = client.v1.refunds.retrieve(re.id)
    assert re.status == "failed"
    assert re.failure_reason == "expired_or_canceled_card"
    assert client.v1.charges.retrieve(pi.latest_charge).amount_refunded == 0
    assert balance_total(sb, None) == bt_sum(sb, None) == 3000 - 117
    assert sb.list_events("refund.failed")


def test_dispute_inquiry(sb: Sandbox, client: Any) -> None:
    pi = client.v1.payment_intents.create(
        params={
            "amount": 3000,
            "currency": "usd",
            "payment_method": "pm_card_createDisputeInquiry",
            "confirm": True,
        }
    )
    [dp] = client.v1.disputes.list(params={"payment_intent": pi.id}).data
    assert dp.status == "warning_needs_response"
    assert dp.is_charge_refundable is True
    assert balance_total(sb, None) == 3000 - 117  # inquiries move no money
    client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 500})
    # evidence on an inquiry: under review, still an inquiry
    dp = client.v1.disputes.update(dp.id, params={"evidence": {"uncategorized_text": "sent"}})
    assert dp.status == "warning_under_review"
    dp = client.v1.disputes.close(dp.id)
    assert dp.status == "warning_closed"
    # an inquiry escalated to a chargeback that is lost
    pi2 = client.v1.payment_intents.create(
        params={
            "amount": 2000,
            "currency": "usd",
            "payment_method": "pm_card_createDisputeInquiry",
            "confirm": True,
        }
    )
    [dp2] = client.v1.disputes.list(params={"payment_intent": pi2.id}).data
    sb.close_dispute(dp2.id, "lost")
    dp2 = client.v1.disputes.retrieve(dp2.id)
    assert dp2.status == "lost"
    assert [t.net for t in dp2.balance_transactions] == [-3500]
    assert balance_total(sb, None) == bt_sum(sb, None)
