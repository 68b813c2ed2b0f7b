"""Every object the sandbox serves carries (at least) the keys of Stripe's own example object."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stripe_sandbox import Sandbox
from stripe_sandbox._shape_keys import FIXTURE_KEYS
from stripe_sandbox.fixtures import fixtures_path

from .conftest import DAY, Hooks, onboarded

FIXTURES = fixtures_path()


def _collect(node: Any, out: dict[str, list[dict[str, Any]]]) -> None:
    if isinstance(node, dict):
        kind = node.get("object")
        if isinstance(kind, str) and kind != "list":
            key = f"deleted_{kind}" if node.get("deleted") is True else kind
            if kind == "bank_account" and node.get("deleted"):
                key = "deleted_external_account"
            out.setdefault(key, []).append(node)
        for v in node.values():
            _collect(v, out)
    elif isinstance(node, list):
        for v in node:
            _collect(v, out)


def _exercise(sb: Sandbox, client: Any, hooks: Hooks) -> list[Any]:
    """Touch every resource; return every JSON payload the sandbox produced."""
    seen: list[Any] = []

    def keep(obj: Any) -> Any:
        seen.append(obj.to_dict() if hasattr(obj, "to_dict") else obj)
        return obj

    keep(
        client.v1.webhook_endpoints.create(
            params={"url": "https://h.test/", "enabled_events": ["*"], "connect": True}
        )
    )
    keep(
        client.v1.webhook_endpoints.create(
            params={"url": "https://h.test/", "enabled_events": ["*"]}
        )
    )
    acct = keep(onboarded(sb, client))
    keep(client.v1.accounts.capabilities.list(acct.id))
    keep(
        client.v1.account_links.create(
            params={
                "account": acct.id,
                "type": "account_onboarding",
                "refresh_url": "https://a.test/r",
                "return_url": "https://a.test/x",
            }
        )
    )
    keep(
        client.v1.account_sessions.create(
            params={"account": acct.id, "components": {"payments": {"enabled": True}}}
        )
    )
    keep(client.v1.accounts.login_links.create(acct.id))
    cus = keep(client.v1.customers.create(params={"email": "s@x.test"}))
    keep(
        client.v1.setup_intents.create(
            params={"customer": cus.id, "payment_method": "pm_card_visa", "confirm": True}
        )
    )
    pi = keep(
        client.v1.payment_intents.create(
            params={
                "amount": 10000,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": True,
                "application_fee_amount": 1000,
                "transfer_data": {"destination": acct.id},
                "expand": ["latest_charge.balance_transaction"],
            }
        )
    )
    keep(
        client.v1.refunds.create(
            params={
                "payment_intent": pi.id,
                "amount": 1000,
                "reverse_transfer": True,
                "refund_application_fee": True,
            }
        )
    )
    keep(client.v1.application_fees.list())
    keep(client.v1.transfers.list(params={"expand": ["data.destination_payment"]}))
    keep(client.v1.disputes.retrieve(sb.open_dispute(pi.latest_charge.id)["id"]))
    keep(client.v1.balance.retrieve())
    keep(client.v1.balance_transactions.list(params={"limit": 100}))
    sb.advance(2 * DAY)
    opts = {"stripe_account": acct.id}
    keep(client.v1.payouts.create(params={"amount": 100, "currency": "usd"}, options=opts))
    keep(client.v1.payment_methods.list(params={"customer": cus.id}))
    keep(client.v1.events.list(params={"limit": 100}))
    keep(client.v1.customers.delete(cus.id))
    keep(client.v1.webhook_endpoints.delete(client.v1.webhook_endpoints.list().data[0].id))
    sb.deauthorize(acct.id)
    other = client.v1.accounts.create(params={"type": "express"})
    keep(client.v1.accounts.delete(other.id))
    seen.extend(r["json"] for r in hooks.received)
    return seen


def test_served_objects_carry_fixture_keys(sb: Sandbox, client: Any, hooks: Hooks) -> None:
    if not FIXTURES.exists():
        pytest.skip(f"Stripe fixture file not found at {FIXTURES} (set STRIPE_SANDBOX_FIXTURES)")
    resources = json.loads(FIXTURES.read_text())["resources"]
    found: dict[str, list[dict[str, Any]]] = {}
    _collect(_exercise(sb, client, hooks), found)
    served = set(found)
    expected = {
        "account", "account_link", "account_session", "application", "application_fee",
        "balance", "balance_transaction", "bank_account", "capability", "charge", "customer",
        "deleted_account", "deleted_customer", "deleted_webhook_endpoint", "dispute", "event",
        "fee_refund", "login_link", "payment_intent", "payment_method", "payout", "refund",
        "setup_intent", "transfer", "transfer_reversal", "webhook_endpoint",
    }  # fmt: skip
    assert expected <= served, expected - served
    problems = []
    for kind, objects in sorted(found.items()):
        assert kind in resources, f"no Stripe fixture for served object type {kind!r}"
        want = set(resources[kind])
        for obj in objects:
            missing = want - set(obj)
            if missing:
                problems.append(f"{kind} {obj.get('id')}: missing {sorted(missing)}")
    assert not problems, "\n".join(problems[:20])


def test_packaged_keys_match_fixture() -> None:
    if not FIXTURES.exists():
        pytest.skip(f"Stripe fixture file not found at {FIXTURES} (set STRIPE_SANDBOX_FIXTURES)")
    resources = json.loads(FIXTURES.read_text())["resources"]
    for kind, keys in FIXTURE_KEYS.items():
        assert set(resources[kind]) <= set(keys), kind
