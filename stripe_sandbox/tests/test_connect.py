from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_sandbox import Sandbox

from .conftest import DAY, Hooks, balance_total, body_of, bt_sum, onboarded


def _hook_all(client: Any, connect: bool = False) -> Any:
    return client.v1.webhook_endpoints.create(
        params={"url": "https://hooks.test/stripe", "enabled_events": ["*"], "connect": connect}
    )


def test_account_lifecycle(sb: Sandbox, client: Any, hooks: Hooks) -> None:
    _hook_all(client, connect=True)
    acct = client.v1.accounts.create(
        params={
            "controller": {
                "fees": {"payer": "application"},
                "losses": {"payments": "application"},
                "stripe_dashboard": {"type": "express"},
                "requirement_collection": "stripe",
            },
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
            "metadata": {"seller": "42"},
        }
    )
    assert acct.id.startswith("acct_")
    assert acct.type == "express"
    assert acct.charges_enabled is False
    assert acct.payouts_enabled is False
    assert acct.details_submitted is False
    assert acct.capabilities.to_dict() == {"card_payments": "inactive", "transfers": "inactive"}
    assert acct.requirements.currently_due
    assert acct.requirements.disabled_reason == "requirements.past_due"
    assert acct.controller.stripe_dashboard.type == "express"

    link = client.v1.account_links.create(
        params={
            "account": acct.id,
            "type": "account_onboarding",
            "refresh_url": "https://app.test/refresh",
            "return_url": "https://app.test/return",
        }
    )
    assert link.expires_at == sb.now() + 300
    assert sb.follow_account_link(link.url) == "https://app.test/return"
    assert sb.follow_account_link(link.url) == "https://app.test/refresh"  # single use
    acct = client.v1.accounts.retrieve(acct.id)
    assert acct.charges_enabled
    assert acct.payouts_enabled
    assert acct.details_submitted
    assert acct.capabilities.to_dict() == {"card_payments": "active", "transfers": "active"}
    assert acct.requirements.currently_due == []
    assert acct.external_accounts.data[0].object == "bank_account"

    updated = [r["json"] for r in hooks.received if r["json"]["type"] == "account.updated"]
    assert updated[-1]["account"] == acct.id
    assert updated[-1]["data"]["previous_attributes"]["charges_enabled"] is False
    caps = [r["json"] for r in hooks.received if r["json"]["type"] == "capability.updated"]
    assert {c["data"]["object"]["id"] for c in caps} == {"card_payments", "transfers"}
    assert caps[0]["data"]["previous_attributes"] == {"status": "inactive"}

    cap = client.v1.accounts.capabilities.retrieve(acct.id, "transfers")
    assert cap.status == "active"
    assert cap.requested
    assert len(client.v1.accounts.capabilities.list(acct.id).data) == 2

    login = client.v1.accounts.login_links.create(acct.id)
    assert login.url.startswith("https://")
    sess = client.v1.account_sessions.create(
        params={"account": acct.id, "components": {"payments": {"enabled": True}}}
    )
    assert sess.client_secret.startswith("accs_secret_")

    # requirements come due again: deadline first, then past due
    sb.require_information(acct.id, ["individual.verification.document"], deadline=sb.now() + DAY)
    acct = client.v1.accounts.retrieve(acct.id)
    assert acct.requirements.currently_due == ["individual.verification.document"]
    assert acct.requirements.current_deadline == sb.now() + DAY
    assert acct.charges_enabled
    sb.advance(DAY)
    acct = client.v1.accounts.retrieve(acct.id)
    assert acct.requirements.past_due == ["individual.verification.document"]
    assert acct.requirements.disabled_reason == "requirements.past_due"
    assert acct.charges_enabled is False
    assert acct.payouts_enabled is False
    assert client.v1.accounts.capabilities.retrieve(acct.id, "transfers").status == "inactive"
    sb.complete_onboarding(acct.id)
    acct = client.v1.accounts.update(acct.id, params={"metadata": {"seller": ""}})
    assert acct.metadata.to_dict() == {}
    assert acct.charges_enabled

    listed = client.v1.accounts.list(params={"limit": 10})
    assert [a.id for a in listed.data] == [acct.id]
    deleted = client.v1.accounts.delete(acct.id)
    assert deleted.deleted is True


def test_standard_account_and_links(client: Any) -> None:
    acct = client.v1.accounts.create(params={"type": "standard"})
    assert acct.controller.stripe_dashboard.type == "full"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.accounts.login_links.create(acct.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.account_links.create(
            params={
                "account": acct.id,
                "type": "account_update",
                "refresh_url": "https://a.test/r",
                "return_url": "https://a.test/x",
            }
        )
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.account_links.create(params={"account": acct.id, "type": "account_onboarding"})
    assert e.value.param == "refresh_url"


def test_account_link_expires(sb: Sandbox, client: Any) -> None:
    acct = client.v1.accounts.create(params={"type": "express"})
    link = client.v1.account_links.create(
        params={
            "account": acct.id,
            "type": "account_onboarding",
            "refresh_url": "https://a.test/refresh",
            "return_url": "https://a.test/return",
        }
    )
    sb.advance(301)
    assert sb.follow_account_link(link.url) == "https://a.test/refresh"
    assert client.v1.accounts.retrieve(acct.id).details_submitted is False


def test_connected_account_scoping(sb: Sandbox, client: Any) -> None:
    a = onboarded(sb, client)
    b = onboarded(sb, client)
    cus = client.v1.customers.create(params={"email": "x@a.test"}, options={"stripe_account": a.id})
    assert client.v1.customers.retrieve(cus.id, options={"stripe_account": a.id}).id == cus.id
    for opts in ({}, {"stripe_account": b.id}):
        with pytest.raises(stripe.InvalidRequestError) as e:
            client.v1.customers.retrieve(cus.id, options=opts)
        assert e.value.http_status == 404
    assert client.v1.customers.list().data == []
    with pytest.raises(stripe.PermissionError) as perm:
        client.v1.customers.list(options={"stripe_account": "acct_doesnotexist"})
    assert perm.value.http_status == 403
    assert body_of(perm.value)["code"] == "account_invalid"
    # direct charge on the connected account with an application fee
    pi = client.v1.payment_intents.create(
        params={
            "amount": 10000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "application_fee_amount": 500,
        },
        options={"stripe_account": a.id},
    )
    assert pi.status == "succeeded"
    assert balance_total(sb, a.id) == 10000 - 320 - 500
    assert balance_total(sb, None) == 500
    fees = client.v1.application_fees.list()
    assert fees.data[0].amount == 500
    assert fees.data[0].account == a.id
    sb.deauthorize(a.id)
    with pytest.raises(stripe.PermissionError):
        client.v1.customers.list(options={"stripe_account": a.id})


def test_destination_charge_flow_adds_up(sb: Sandbox, client: Any, hooks: Hooks) -> None:
    _hook_all(client)
    _hook_all(client, connect=True)
    a = onboarded(sb, client)
    pi = client.v1.payment_intents.create(
        params={
            "amount": 10000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "application_fee_amount": 1000,
            "transfer_data": {"destination": a.id},
            "on_behalf_of": a.id,
            "expand": ["latest_charge.transfer.destination_payment"],
        }
    )
    ch = pi.latest_charge
    tr = ch.transfer
    assert tr.id.startswith("tr_")
    assert tr.amount == 10000
    assert tr.destination == a.id
    py = tr.destination_payment
    assert py.id.startswith("py_")
    py_bt = client.v1.balance_transactions.retrieve(
        py.balance_transaction, options={"stripe_account": a.id}
    )
    assert (py_bt.amount, py_bt.fee, py_bt.net) == (10000, 1000, 9000)
    fee = client.v1.application_fees.retrieve(ch.application_fee)
    assert fee.id.startswith("fee_")
    assert fee.amount == 1000
    assert balance_total(sb, None) == 9680 - 10000 + 1000
    assert balance_total(sb, a.id) == 9000

    re = client.v1.refunds.create(
        params={
            "payment_intent": pi.id,
            "amount": 4000,
            "reverse_transfer": True,
            "refund_application_fee": True,
        }
    )
    assert re.id.startswith("re_")
    assert re.transfer_reversal.startswith("trr_")
    trr = client.v1.transfers.reversals.retrieve(tr.id, re.transfer_reversal)
    assert trr.amount == 4000
    fee = client.v1.application_fees.retrieve(ch.application_fee)
    assert fee.amount_refunded == 400
    assert fee.refunds.data[0].id.startswith("fr_")
    assert balance_total(sb, None) == 680 - 4000 + 4000 - 400
    assert balance_total(sb, a.id) == 9000 - 4000 + 400

    dp = sb.open_dispute(ch.id, "fraudulent", amount=6000)
    assert dp["id"].startswith("du_")
    client.v1.disputes.close(dp["id"])
    assert balance_total(sb, None) == 280 - 6000 - 1500 == -7220
    assert balance_total(sb, a.id) == 5400
    sb.advance(3 * DAY)
    for acct in (None, a.id):
        assert bt_sum(sb, acct) == balance_total(sb, acct)
    assert client.v1.balance.retrieve().available[0].amount == -7220
    bal_a = client.v1.balance.retrieve(options={"stripe_account": a.id})
    assert bal_a.available[0].amount == 5400
    assert bal_a.pending[0].amount == 0
    types = hooks.types()
    for t in (
        "payment_intent.succeeded",
        "charge.succeeded",
        "transfer.created",
        "application_fee.created",
        "refund.created",
        "charge.refunded",
        "transfer.reversed",
        "application_fee.refunded",
        "charge.dispute.created",
        "charge.dispute.closed",
    ):
        assert t in types, t


def test_separate_charges_and_transfers_adds_up(sb: Sandbox, client: Any) -> None:
    b = onboarded(sb, client)
    pi = client.v1.payment_intents.create(
        params={
            "amount": 10000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "transfer_group": "order_1",
        }
    )
    # nothing available yet: a transfer without source_transaction fails ...
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.transfers.create(params={"amount": 8000, "currency": "usd", "destination": b.id})
    assert e.value.code == "balance_insufficient"
    # ... but tying it to the charge works immediately
    tr = client.v1.transfers.create(
        params={
            "amount": 8000,
            "currency": "usd",
            "destination": b.id,
            "source_transaction": pi.latest_charge,
            "transfer_group": "order_1",
            "expand": ["destination_payment", "source_transaction", "balance_transaction"],
        }
    )
    assert tr.source_transaction.id == pi.latest_charge
    assert tr.destination_payment.amount == 8000
    assert tr.balance_transaction.amount == -8000
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.create(
            params={
                "amount": 3000,
                "currency": "usd",
                "destination": b.id,
                "source_transaction": pi.latest_charge,
            }
        )
    assert balance_total(sb, None) == 9680 - 8000
    assert balance_total(sb, b.id) == 8000
    client.v1.refunds.create(params={"charge": pi.latest_charge, "amount": 5000})
    trr = client.v1.transfers.reversals.create(tr.id, params={"amount": 4000})
    assert trr.destination_payment_refund.startswith("pyr_")
    tr = client.v1.transfers.retrieve(tr.id)
    assert tr.amount_reversed == 4000
    assert tr.reversed is False
    assert balance_total(sb, None) == 1680 - 5000 + 4000 == 680
    assert balance_total(sb, b.id) == 4000
    dp = sb.open_dispute(pi.latest_charge, "product_not_received", amount=5000)
    sb.close_dispute(dp["id"], "lost")
    assert balance_total(sb, None) == 680 - 6500 == -5820
    assert balance_total(sb, b.id) == 4000
    for acct in (None, b.id):
        assert bt_sum(sb, acct) == balance_total(sb, acct)
    listed = client.v1.transfers.list(params={"transfer_group": "order_1"})
    assert [t.id for t in listed.data] == [tr.id]
    # the dispute left the platform balance negative: a plain transfer cannot be funded
    sb.advance(2 * DAY)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.create(params={"amount": 100, "currency": "usd", "destination": b.id})


def test_transfer_requires_capability(sb: Sandbox, client: Any) -> None:
    acct = client.v1.accounts.create(params={"type": "express"})
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd", "transfer_data": {"destination": acct.id}}
        )
    assert e.value.code == "insufficient_capabilities_for_transfer"
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd", "application_fee_amount": 10}
        )
    assert e.value.param == "application_fee_amount"


def test_payouts_lifecycle(sb: Sandbox, client: Any, hooks: Hooks) -> None:
    _hook_all(client, connect=True)
    a = onboarded(sb, client)
    client.v1.payment_intents.create(
        params={
            "amount": 10000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "transfer_data": {"destination": a.id},
        }
    )
    opts = {"stripe_account": a.id}
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.payouts.create(params={"amount": 5000, "currency": "usd"}, options=opts)
    assert e.value.code == "balance_insufficient"
    sb.advance(2 * DAY)
    po = client.v1.payouts.create(params={"amount": 6000, "currency": "usd"}, options=opts)
    assert po.status == "pending"
    assert po.id.startswith("po_")
    assert po.arrival_date == sb.now() + 2 * DAY
    assert balance_total(sb, a.id) == 4000
    sb.advance(3600)
    assert client.v1.payouts.retrieve(po.id, options=opts).status == "in_transit"
    sb.advance(2 * DAY)
    assert client.v1.payouts.retrieve(po.id, options=opts).status == "paid"
    paid = [r["json"] for r in hooks.received if r["json"]["type"] == "payout.paid"]
    assert paid[0]["account"] == a.id
    po2 = client.v1.payouts.create(params={"amount": 1000, "currency": "usd"}, options=opts)
    sb.fail_payout(po2.id, "account_closed")
    po2 = client.v1.payouts.retrieve(po2.id, options=opts)
    assert po2.status == "failed"
    assert po2.failure_code == "account_closed"
    assert balance_total(sb, a.id) == 4000
    assert "payout.failed" in hooks.types()
    txns = client.v1.balance_transactions.list(params={"payout": po2.id}, options=opts)
    assert {t.type for t in txns.data} == {"payout", "payout_failure"}
    po3 = client.v1.payouts.create(params={"amount": 500, "currency": "usd"}, options=opts)
    po3 = client.v1.payouts.cancel(po3.id, options=opts)
    assert po3.status == "canceled"
    assert bt_sum(sb, a.id) == balance_total(sb, a.id) == 4000
    assert [p.id for p in client.v1.payouts.list(params={"status": "paid"}, options=opts).data] == [
        po.id
    ]


def test_payout_fails_with_test_bank_account(sb: Sandbox, client: Any) -> None:
    acct = client.v1.accounts.create(
        params={
            "type": "custom",
            "capabilities": {"transfers": {"requested": True}},
            "external_account": {
                "object": "bank_account",
                "country": "US",
                "currency": "usd",
                "routing_number": "110000000",
                "account_number": "000111111116",
            },
        }
    )
    sb.complete_onboarding(acct.id)
    pi = client.v1.payment_intents.create(
        params={
            "amount": 5000,
            "currency": "usd",
            "payment_method": "pm_card_bypassPending",
            "confirm": True,
        }
    )
    client.v1.transfers.create(
        params={
            "amount": 3000,
            "currency": "usd",
            "destination": acct.id,
            "source_transaction": pi.latest_charge,
        }
    )
    opts = {"stripe_account": acct.id}
    po = client.v1.payouts.create(params={"amount": 3000, "currency": "usd"}, options=opts)
    sb.advance(3 * DAY)
    po = client.v1.payouts.retrieve(po.id, options=opts)
    assert po.status == "failed"
    assert po.failure_code == "no_account"
    assert balance_total(sb, acct.id) == 3000


def test_balance_transactions_filters(sb: Sandbox, client: Any) -> None:
    pi = client.v1.payment_intents.create(
        params={
            "amount": 2000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 500})
    sb.advance(10)
    client.v1.payment_intents.create(
        params={
            "amount": 3000,
            "currency": "eur",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    assert {t.type for t in client.v1.balance_transactions.list().data} == {"charge", "refund"}
    refunds = client.v1.balance_transactions.list(params={"type": "refund"})
    assert [t.amount for t in refunds.data] == [-500]
    eur = client.v1.balance_transactions.list(params={"currency": "eur"})
    assert len(eur.data) == 1
    by_source = client.v1.balance_transactions.list(params={"source": pi.latest_charge})
    assert len(by_source.data) == 1
    recent = client.v1.balance_transactions.list(params={"created": {"gte": sb.now()}})
    assert len(recent.data) == 1
    bal = client.v1.balance.retrieve()
    assert {b.currency for b in bal.pending} == {"eur", "usd"}
