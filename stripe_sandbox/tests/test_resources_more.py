"""Breadth: the less travelled endpoints and error paths of each resource."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
import stripe

from stripe_sandbox import Sandbox, SandboxError
from stripe_sandbox.errors import StripeError
from stripe_sandbox.params import validate

from .conftest import DAY, Hooks, balance_total, body_of, onboarded


def test_accounts_more(sb: Sandbox, client: Any, hooks: Hooks) -> None:
    me = client.v1.accounts.retrieve_current()
    assert me.id == sb.platform_id
    assert me.charges_enabled is True
    custom = client.v1.accounts.create(
        params={
            "controller": {
                "stripe_dashboard": {"type": "none"},
                "requirement_collection": "application",
                "fees": {"payer": "application"},
                "losses": {"payments": "application"},
            },
            "capabilities": {"transfers": {"requested": True}},
            "business_type": "individual",
            "external_account": "btok_us_verified",
            "tos_acceptance": {"date": sb.now(), "ip": "10.0.0.1"},
        }
    )
    assert custom.type == "custom"
    assert len(custom.external_accounts.data) == 1
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.accounts.create(
            params={"type": "express", "controller": {"fees": {"payer": "account"}}}
        )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.accounts.create(
            params={
                "controller": {
                    "stripe_dashboard": {"type": "none"},
                    "requirement_collection": "stripe",
                }
            }
        )
    link = client.v1.account_links.create(
        params={
            "account": custom.id,
            "type": "account_update",
            "refresh_url": "https://a.test/r",
            "return_url": "https://a.test/x",
        }
    )
    assert link.url.startswith(sb.base_url)
    cap = client.v1.accounts.capabilities.update(
        custom.id, "card_payments", params={"requested": True}
    )
    assert cap.status == "inactive"
    assert sb.list_events("capability.updated", account=custom.id)
    sb.complete_onboarding(custom.id)
    cap = client.v1.accounts.capabilities.update(
        custom.id, "card_payments", params={"requested": False}
    )
    assert cap.requested is False
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.accounts.capabilities.retrieve(custom.id, "klarna_payments")
    ext = client.v1.accounts.external_accounts.list(custom.id)
    assert ext.data[0].id.startswith("ba_")
    acct = client.v1.accounts.update(
        custom.id,
        params={
            "email": "new@x.test",
            "business_profile": {"url": "https://shop.test"},
            "settings": {"payouts": {"schedule": {"interval": "manual"}}},
            "external_account": {
                "object": "bank_account",
                "country": "US",
                "currency": "usd",
                "account_number": "000123456789",
            },
        },
    )
    assert acct.email == "new@x.test"
    assert acct.business_profile.url == "https://shop.test"
    own = client.v1.accounts.retrieve(custom.id, options={"stripe_account": custom.id})
    assert own.id == custom.id
    other = client.v1.accounts.create(params={"type": "express"})
    with pytest.raises(stripe.PermissionError):
        client.v1.accounts.retrieve(other.id, options={"stripe_account": custom.id})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.accounts.create(options={"stripe_account": custom.id})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.accounts.delete(sb.platform_id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.account_links.create(
            params={
                "account": "acct_missing",
                "type": "account_onboarding",
                "refresh_url": "https://a.test/r",
                "return_url": "https://a.test/x",
            }
        )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.account_sessions.create(
            params={"account": "acct_missing", "components": {"payments": {"enabled": True}}}
        )
    express = client.v1.accounts.create(params={"type": "express"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.accounts.login_links.create(express.id)  # not onboarded yet
    with pytest.raises(SandboxError):
        sb.complete_onboarding("acct_missing")
    with pytest.raises(SandboxError):
        sb.follow_account_link("https://x/_sandbox/account_links/nope")
    sb.require_information(custom.id, past_due=True)
    assert client.v1.accounts.retrieve(custom.id).requirements.past_due


def test_customers_and_payment_methods_more(sb: Sandbox, client: Any) -> None:
    cus = client.v1.customers.create(params={"payment_method": "pm_card_visa", "name": "A"})
    [pm] = client.v1.customers.payment_methods.list(cus.id).data
    cus = client.v1.customers.update(
        cus.id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    assert cus.invoice_settings.default_payment_method == pm.id
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(
            cus.id, params={"invoice_settings": {"default_payment_method": "pm_nope"}}
        )
    assert client.v1.customers.retrieve(cus.id).name == "A"
    pm = client.v1.payment_methods.update(
        pm.id,
        params={
            "billing_details": {"name": "Ann", "address": {"city": "Paris"}},
            "card": {"exp_month": 3, "exp_year": 2031},
            "metadata": {"k": "v"},
            "allow_redisplay": "always",
        },
    )
    assert pm.billing_details.name == "Ann"
    assert pm.billing_details.address.city == "Paris"
    assert (pm.card.exp_month, pm.card.exp_year) == (3, 2031)
    assert client.v1.payment_methods.retrieve(pm.id).metadata.k == "v"
    assert client.v1.payment_methods.retrieve("pm_card_amex").card.brand == "amex"
    numbered = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4000002500003155", "exp_month": 1, "exp_year": 29, "cvc": "123"},
        }
    )
    assert numbered.card.last4 == "3155"
    assert numbered.card.exp_year == 2029
    with pytest.raises(stripe.CardError) as e:
        client.v1.payment_methods.create(
            params={
                "type": "card",
                "card": {"number": "1234123412341234", "exp_month": 1, "exp_year": 2030},
            }
        )
    assert e.value.code == "incorrect_number"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_bogus"}})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.create(params={"type": "sepa_debit"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.create(params={"type": "card"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.detach(numbered.id)
    other = client.v1.customers.create()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.attach(pm.id, params={"customer": other.id})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.payment_methods.retrieve(other.id, pm.id)
    # clone the platform customer's card onto a connected account
    acct = onboarded(sb, client)
    clone = client.v1.payment_methods.create(
        params={"customer": cus.id, "payment_method": pm.id},
        options={"stripe_account": acct.id},
    )
    assert clone.id != pm.id
    assert clone.card.last4 == pm.card.last4
    direct = client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "usd", "payment_method": clone.id, "confirm": True},
        options={"stripe_account": acct.id},
    )
    assert direct.status == "succeeded"
    deleted = client.v1.customers.delete(cus.id)
    assert deleted.deleted
    assert client.v1.customers.retrieve(cus.id).deleted is True


def test_payment_intents_more(sb: Sandbox, client: Any) -> None:
    cus = client.v1.customers.create()
    other = client.v1.customers.create()
    pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd", "payment_method": pm.id, "confirm": True}
        )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "customer": other.id,
                "payment_method": pm.id,
                "confirm": True,
            }
        )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd", "off_session": True}
        )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd", "confirm": True}
        )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(params={"amount": 10**9, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(
            params={"amount": 100, "currency": "eur", "customer": "cus_missing"}
        )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd", "payment_method_data": {"type": "ideal"}}
        )
    pi = client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "customer": cus.id,
            "payment_method": "pm_card_mastercard",
            "metadata": {"order": "1"},
            "confirmation_method": "manual",
        }
    )
    assert pi.status == "requires_confirmation"
    pi = client.v1.payment_intents.update(
        pi.id,
        params={
            "amount": 1500,
            "description": "lot 7",
            "currency": "USD",
            "payment_method": "pm_card_authenticationRequired",
        },
    )
    assert pi.amount == 1500
    assert pi.currency == "usd"
    pi = client.v1.payment_intents.confirm(pi.id)
    assert pi.status == "requires_action"
    sb.complete_3ds(pi.id)
    pi = client.v1.payment_intents.retrieve(pi.id)
    assert pi.status == "requires_confirmation"  # manual confirmation after the challenge
    pi = client.v1.payment_intents.confirm(pi.id)
    assert pi.status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.update(pi.id, params={"amount": 2000})
    pi = client.v1.payment_intents.update(pi.id, params={"metadata": {"order": "2"}})
    assert pi.metadata.order == "2"
    with pytest.raises(stripe.CardError) as e:
        client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "confirm": True,
                "payment_method": "pm_card_threeDSecure2Required",
                "error_on_requires_action": True,
            }
        )
    assert e.value.code == "authentication_required"
    with pytest.raises(SandboxError):
        sb.complete_3ds(pi.id)
    with pytest.raises(SandboxError):
        sb.fail_3ds("pi_nope")
    listed = client.v1.payment_intents.list(params={"customer": cus.id})
    assert [p.id for p in listed.data] == [pi.id]
    charges = client.v1.charges.list(params={"payment_intent": pi.id})
    assert len(charges.data) == 1
    ch = client.v1.charges.update(
        charges.data[0].id,
        params={
            "description": "x",
            "metadata": {"a": "b"},
            "fraud_details": {"user_report": "safe"},
        },
    )
    assert ch.description == "x"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.capture(pi.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.confirm(pi.id)
    # capture with a new application fee on a destination charge
    acct = onboarded(sb, client)
    auth = client.v1.payment_intents.create(
        params={
            "amount": 5000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "capture_method": "manual",
            "transfer_data": {"destination": acct.id},
            "application_fee_amount": 500,
        }
    )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.capture(auth.id, params={"amount_to_capture": 6000})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.capture(
            auth.id, params={"amount_to_capture": 400, "application_fee_amount": 450}
        )
    auth = client.v1.payment_intents.update(auth.id, params={"application_fee_amount": 300})
    captured = client.v1.payment_intents.capture(
        auth.id, params={"amount_to_capture": 4000, "application_fee_amount": 200}
    )
    assert captured.amount_received == 4000
    assert balance_total(sb, acct.id) == 4000 - 200
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "application_fee_amount": 10,
                "transfer_data": {"destination": acct.id, "amount": 500},
            }
        )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "application_fee_amount": 2000,
                "transfer_data": {"destination": acct.id},
            }
        )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "transfer_data": {"destination": acct.id, "amount": 5000},
            }
        )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd", "transfer_data": {"destination": acct.id}},
            options={"stripe_account": acct.id},
        )
    partial = client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "transfer_data": {"destination": acct.id, "amount": 700},
        }
    )
    tr = client.v1.transfers.list(params={"destination": acct.id}).data[0]
    assert tr.amount == 700
    assert tr.transfer_group == f"group_{partial.id}"


def test_setup_intents_more(sb: Sandbox, client: Any) -> None:
    cus = client.v1.customers.create()
    si = client.v1.setup_intents.create(params={"customer": cus.id, "metadata": {"a": "1"}})
    assert si.status == "requires_payment_method"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.setup_intents.confirm(si.id)
    si = client.v1.setup_intents.update(
        si.id, params={"payment_method": "pm_card_visa", "description": "card on file"}
    )
    assert si.status == "requires_confirmation"
    si = client.v1.setup_intents.confirm(si.id, params={"return_url": "https://a.test/back"})
    assert si.status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.setup_intents.update(si.id, params={"payment_method": "pm_card_visa"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.setup_intents.cancel(si.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.setup_intents.confirm(si.id)
    listed = client.v1.setup_intents.list(params={"customer": cus.id})
    assert [s.id for s in listed.data] == [si.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.setup_intents.create(params={"confirm": True})
    acct = onboarded(sb, client)
    si2 = client.v1.setup_intents.create(
        params={
            "payment_method": "pm_card_authenticationRequired",
            "confirm": True,
            "return_url": "https://a.test/back",
            "on_behalf_of": acct.id,
            "automatic_payment_methods": {"enabled": True},
        }
    )
    assert si2.next_action.type == "redirect_to_url"


def test_money_endpoints_more(sb: Sandbox, client: Any, hooks: Hooks) -> None:
    acct = onboarded(sb, client)
    pi = client.v1.payment_intents.create(
        params={
            "amount": 10000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "transfer_data": {"destination": acct.id},
            "application_fee_amount": 1000,
        }
    )
    ch = client.v1.charges.retrieve(pi.latest_charge)
    fee = client.v1.application_fees.retrieve(ch.application_fee)
    fr = client.v1.application_fees.refunds.create(fee.id, params={"amount": 300})
    assert fr.fee == fee.id
    fr = client.v1.application_fees.refunds.update(fee.id, fr.id, params={"metadata": {"x": "1"}})
    assert fr.metadata.x == "1"
    assert client.v1.application_fees.refunds.retrieve(fee.id, fr.id).amount == 300
    assert len(client.v1.application_fees.refunds.list(fee.id).data) == 1
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.application_fees.refunds.create(fee.id, params={"amount": 800})
    client.v1.application_fees.refunds.create(fee.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.application_fees.refunds.create(fee.id)
    assert client.v1.application_fees.list(params={"charge": ch.id}).data[0].refunded
    tr = client.v1.transfers.retrieve(ch.transfer)
    tr = client.v1.transfers.update(
        tr.id, params={"description": "seller payout", "metadata": {"lot": "1"}}
    )
    assert tr.description == "seller payout"
    trr = client.v1.transfers.reversals.create(
        tr.id, params={"amount": 100, "metadata": {"r": "1"}}
    )
    trr = client.v1.transfers.reversals.update(tr.id, trr.id, params={"metadata": {"r": "2"}})
    assert trr.metadata.r == "2"
    assert len(client.v1.transfers.reversals.list(tr.id).data) == 1
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.reversals.create(tr.id, params={"amount": 10**6})
    client.v1.transfers.reversals.create(tr.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.reversals.create(tr.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.create(
            params={"amount": 10, "currency": "usd", "destination": acct.id},
            options={"stripe_account": acct.id},
        )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.create(
            params={
                "amount": 10,
                "currency": "eur",
                "destination": acct.id,
                "source_transaction": ch.id,
            }
        )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.create(
            params={"amount": 10, "currency": "usd", "destination": "acct_missing"}
        )
    re = client.v1.refunds.create(params={"charge": ch.id, "amount": 100, "reason": "duplicate"})
    re = client.v1.refunds.update(re.id, params={"metadata": {"why": "dup"}})
    assert sb.list_events("refund.updated")
    assert client.v1.refunds.retrieve(re.id).metadata.why == "dup"
    assert [r.id for r in client.v1.refunds.list(params={"charge": ch.id}).data] == [re.id]
    raw = sb.handle(
        "GET", f"/v1/charges/{ch.id}/refunds", {"Authorization": "Bearer sk_test_sandbox"}
    )
    assert [r["id"] for r in raw.json()["data"]] == [re.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.cancel(re.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(
            params={
                "charge": ch.id,
                "reverse_transfer": True,
                "refund_application_fee": True,
                "amount": 100,
            }
        ) if False else client.v1.refunds.create(params={})
    plain = client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"payment_intent": plain.id, "reverse_transfer": True})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(
            params={"payment_intent": plain.id, "refund_application_fee": True}
        )
    client.v1.refunds.create(params={"payment_intent": plain.id})
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.refunds.create(params={"payment_intent": plain.id})
    assert e.value.code == "charge_already_refunded"
    auth = client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "capture_method": "manual",
        }
    )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"payment_intent": auth.id})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"charge": auth.latest_charge})
    open_pi = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"payment_intent": open_pi.id})
    # disputes: list/retrieve/update, won through the control API
    dp = sb.open_dispute(plain.latest_charge)
    with pytest.raises(SandboxError):
        sb.open_dispute(plain.latest_charge)
    with pytest.raises(SandboxError):
        sb.open_dispute(auth.latest_charge)
    assert client.v1.disputes.list(params={"charge": plain.latest_charge}).data[0].id == dp["id"]
    client.v1.disputes.update(
        dp["id"], params={"evidence": {"product_description": "book"}, "submit": False}
    )
    assert client.v1.disputes.retrieve(dp["id"]).status == "needs_response"
    sb.close_dispute(dp["id"], "won")
    with pytest.raises(SandboxError):
        sb.close_dispute(dp["id"], "lost")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.update(dp["id"], params={"metadata": {"a": "b"}})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.close(dp["id"])
    # payouts
    client.v1.payment_intents.create(
        params={
            "amount": 5000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "transfer_data": {"destination": acct.id},
        }
    )
    sb.advance(2 * DAY)
    opts = {"stripe_account": acct.id}
    po = client.v1.payouts.create(
        params={"amount": 100, "currency": "usd", "metadata": {"a": "1"}}, options=opts
    )
    po = client.v1.payouts.update(po.id, params={"metadata": {"a": "2"}}, options=opts)
    assert po.metadata.a == "2"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payouts.create(
            params={"amount": 100, "currency": "usd", "method": "instant"}, options=opts
        )
    sb.advance(3 * DAY)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payouts.cancel(po.id, options=opts)
    with pytest.raises(SandboxError):
        sb.fail_payout("po_missing")
    sb.require_information(acct.id, past_due=True)
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.payouts.create(params={"amount": 100, "currency": "usd"}, options=opts)
    assert e.value.code == "payouts_not_allowed"
    platform_po = client.v1.payouts.create(params={"amount": 100, "currency": "usd"})
    assert platform_po.destination


def test_http_client_stream_and_global(sb: Sandbox) -> None:
    hc = sb.http_client()
    body, status, headers = hc.request_stream(
        "get", f"{sb.base_url}/v1/balance", {"Authorization": "Bearer sk_test_sandbox"}
    )
    assert status == 200
    assert b"balance" in body.read()
    assert "request-id" in headers
    assert len(headers) > 3
    assert list(headers)
    hc.close()


def test_validate_types_directly() -> None:
    out = validate(
        {"amount": "12", "currency": "usd", "confirm": "false"}, "PaymentIntentCreateParams"
    )
    assert out["amount"] == 12
    assert out["confirm"] is False
    with pytest.raises(StripeError):
        validate({"expand": "notalist"}, "CustomerRetrieveParams")
    with pytest.raises(StripeError):
        validate({"metadata": "x"}, "CustomerCreateParams")
    with pytest.raises(StripeError):
        validate({"foo": "1"}, None)
    assert validate({"expand": ["a"]}, None) == {"expand": ["a"]}
    with pytest.raises(StripeError):
        validate({"address": "x"}, "CustomerCreateParams")


def test_control_readers(sb: Sandbox, client: Any, tmp_path: Any) -> None:
    cus = client.v1.customers.create(options={"idempotency_key": "persisted"})
    got = sb.get_object(cus.id)
    assert got is not None
    assert got["id"] == cus.id
    assert sb.get_object("cus_missing") is None
    assert [e["type"] for e in sb.list_events()] == ["customer.created"]
    path = str(tmp_path / "s.json")
    sb.save(path)
    fresh = Sandbox(start_time=sb.now())
    fresh.load(path)
    assert fresh.get_object(cus.id) is not None
    client2: Any = fresh.client()
    again = client2.v1.customers.create(options={"idempotency_key": "persisted"})
    assert again.id == cus.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    newer = client2.v1.customers.create()
    assert newer.id != cus.id  # ids keep being unique after a restart
    sb.clear_deliveries()
    assert sb.deliveries() == []


def test_main_parses_and_serves() -> None:
    from stripe_sandbox import __main__ as entry
    from stripe_sandbox.server import SandboxServer

    with mock.patch.object(SandboxServer, "serve_forever") as serve:
        entry.main(["--port", "0", "--frozen-clock", "--api-key", "sk_test_a"])
    serve.assert_called_once()


def test_error_body_has_request_log_url(client: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.customers.retrieve("cus_missing")
    body = body_of(e.value)
    assert body["request_log_url"].startswith("https://dashboard.stripe.com/test/logs/req_")
    assert body["param"] == "id"
