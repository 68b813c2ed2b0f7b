"""Events, webhook endpoints and delivery, and fault injection."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe

from stripe_sandbox import Sandbox

from .conftest import DAY, T0, Hooks, body_of, onboarded


def _endpoint(client: Any, events: list[str] | None = None, connect: bool = False) -> Any:
    return client.v1.webhook_endpoints.create(
        params={
            "url": "https://hooks.test/stripe",
            "enabled_events": events or ["*"],
            "connect": connect,
        }
    )


def test_signed_like_stripe(sb: Sandbox, client: Any, hooks: Hooks) -> None:
    ep = _endpoint(client)
    assert ep.secret.startswith("whsec_")
    assert "secret" not in client.v1.webhook_endpoints.retrieve(ep.id)
    cus = client.v1.customers.create(params={"email": "s@x.test"})
    [msg] = hooks.received
    event = stripe.Webhook.construct_event(
        msg["body"].decode(), msg["headers"]["Stripe-Signature"], ep.secret
    )
    assert event.type == "customer.created"
    assert event.data.object.id == cus.id
    assert event.pending_webhooks == 1
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            msg["body"].decode(), msg["headers"]["Stripe-Signature"], "whsec_wrong"
        )
    [delivery] = sb.deliveries()
    assert delivery["event_id"] == event.id
    assert delivery["endpoint_id"] == ep.id
    assert delivery["attempt"] == 1
    assert delivery["status"] == 200
    assert client.v1.events.retrieve(event.id).pending_webhooks == 0


def test_enabled_events_and_connect_routing(sb: Sandbox, client: Any, hooks: Hooks) -> None:
    only_pi = _endpoint(client, ["payment_intent.succeeded"])
    connect = _endpoint(client, ["*"], connect=True)
    acct = onboarded(sb, client)
    client.v1.customers.create()
    client.v1.customers.create(options={"stripe_account": acct.id})
    client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    to_pi = sb.deliveries(endpoint_id=only_pi.id)
    assert [d["event_type"] for d in to_pi] == ["payment_intent.succeeded"]
    to_connect = [
        hooks.received[i]["json"]
        for i, d in enumerate(sb.deliveries())
        if d["endpoint_id"] == connect.id
    ]
    assert to_connect
    assert all(ev["account"] == acct.id for ev in to_connect)
    assert "customer.created" in {ev["type"] for ev in to_connect}
    # the platform's own events never reach the connect endpoint
    assert "payment_intent.succeeded" not in {ev["type"] for ev in to_connect}


def test_retries_with_backoff(sb: Sandbox, client: Any, hooks: Hooks) -> None:
    _endpoint(client)
    hooks.fail_next = 2
    cus = client.v1.customers.create()
    first, second = sb.webhook_retry_delays[:2]
    assert [d["status"] for d in sb.deliveries()] == [500]
    sb.advance(first - 1)
    assert len(sb.deliveries()) == 1
    sb.advance(1)
    assert [d["status"] for d in sb.deliveries()] == [500, 500]
    sb.advance(second)
    attempts = sb.deliveries()
    assert [d["status"] for d in attempts] == [500, 500, 200]
    assert [d["attempt"] for d in attempts] == [1, 2, 3]
    assert [d["delivered_at"] for d in attempts] == [T0, T0 + first, T0 + first + second]
    ev = client.v1.events.list(params={"type": "customer.created"}).data[0]
    assert ev.data.object.id == cus.id
    assert ev.pending_webhooks == 0


def test_timeouts_count_as_failures(sb: Sandbox, client: Any, hooks: Hooks) -> None:
    _endpoint(client)
    hooks.raise_timeout = True
    client.v1.customers.create()
    sb.advance(DAY)
    attempts = sb.deliveries()
    assert len(attempts) == 1 + len(sb.webhook_retry_delays)
    assert all(d["status"] is None and "TimeoutError" in d["error"] for d in attempts)
    assert client.v1.events.list().data[0].pending_webhooks == 0


def test_duplicate_shuffle_delay_hold(sb: Sandbox, client: Any, hooks: Hooks) -> None:
    _endpoint(client)
    sb.duplicate_webhooks()
    client.v1.customers.create()
    assert hooks.types() == ["customer.created", "customer.created"]
    sb.duplicate_webhooks(False)
    hooks.received.clear()

    sb.delay_webhooks(120)
    client.v1.customers.create()
    assert hooks.received == []
    sb.advance(120)
    assert hooks.types() == ["customer.created"]
    sb.delay_webhooks(0)
    hooks.received.clear()

    sb.hold_webhooks()
    created = [client.v1.customers.create(params={"name": str(i)}).id for i in range(8)]
    sb.advance(10)
    assert hooks.received == []
    sb.shuffle_webhooks()
    sb.release_webhooks()
    got = [r["json"]["data"]["object"]["id"] for r in hooks.received]
    assert sorted(got) == sorted(created)
    assert got != created  # out of order


def test_queued_mode(hooks: Hooks) -> None:
    sb = Sandbox(start_time=T0, webhook_transport=hooks, webhook_mode="queued")
    client: Any = sb.client()
    _endpoint(client)
    client.v1.customers.create()
    assert hooks.received == []
    assert sb.deliver_pending() == 1
    assert hooks.types() == ["customer.created"]


def test_events_api(sb: Sandbox, client: Any) -> None:
    client.v1.customers.create()
    sb.advance(10)
    pi = client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    evs = client.v1.events.list(params={"types": ["payment_intent.succeeded", "customer.created"]})
    assert [e.type for e in evs.data] == ["payment_intent.succeeded", "customer.created"]
    wildcard = client.v1.events.list(params={"type": "charge.*"})
    assert {e.type for e in wildcard.data} == {"charge.succeeded"}
    recent = client.v1.events.list(params={"created": {"gte": sb.now()}})
    assert "customer.created" not in {e.type for e in recent.data}
    succeeded = client.v1.events.list(params={"type": "payment_intent.succeeded"}).data[0]
    assert succeeded.data.object.id == pi.id
    assert "previous_attributes" not in succeeded.data  # only on *.updated-style events
    refunded = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 100})
    assert refunded.amount == 100
    ch_refunded = client.v1.events.list(params={"type": "charge.refunded"}).data[0]
    assert ch_refunded.data.previous_attributes.amount_refunded == 0
    assert succeeded.id.startswith("evt_")
    assert client.v1.events.retrieve(succeeded.id).type == "payment_intent.succeeded"
    sb.advance(31 * DAY)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.events.retrieve(succeeded.id)


def test_event_snapshot_is_taken_at_event_time(client: Any) -> None:
    pi = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    client.v1.payment_intents.cancel(pi.id)
    created = client.v1.events.list(params={"type": "payment_intent.created"}).data[0]
    assert created.data.object.status == "requires_payment_method"


def test_webhook_endpoint_crud(client: Any) -> None:
    ep = _endpoint(client, ["charge.succeeded"])
    ep = client.v1.webhook_endpoints.update(
        ep.id, params={"enabled_events": ["*"], "disabled": True, "metadata": {"a": "b"}}
    )
    assert ep.status == "disabled"
    assert list(ep.enabled_events) == ["*"]
    assert [e.id for e in client.v1.webhook_endpoints.list().data] == [ep.id]
    assert client.v1.webhook_endpoints.delete(ep.id).deleted is True
    assert client.v1.webhook_endpoints.list().data == []


# ---------------------------------------------------------------- request faults
def test_fail_nth_request(sb: Sandbox, client: Any) -> None:
    sb.fail_requests(500, nth=2, method="POST", path="/v1/customers")
    client.v1.customers.create()
    with pytest.raises(stripe.APIError) as e:
        client.v1.customers.create()
    assert e.value.http_status == 500
    assert body_of(e.value)["type"] == "api_error"
    client.v1.customers.create()
    assert len(client.v1.customers.list().data) == 2


def test_rate_limit_429(sb: Sandbox, client: Any) -> None:
    sb.fail_requests(429)
    with pytest.raises(stripe.RateLimitError) as e:
        client.v1.customers.list()
    assert e.value.http_status == 429
    assert body_of(e.value)["code"] == "rate_limit"


def test_fail_fraction_is_seeded(sb: Sandbox, client: Any) -> None:
    def run() -> list[bool]:
        out = []
        for _ in range(30):
            try:
                client.v1.customers.list()
                out.append(True)
            except stripe.APIError:
                out.append(False)
        return out

    sb.fail_fraction(0.3, seed=7)
    first = run()
    sb.clear_faults()
    sb.fail_fraction(0.3, seed=7)
    assert run() == first
    assert 0 < first.count(False) < 30


def test_latency(sb: Sandbox, client: Any) -> None:
    sb.add_latency(0.15, times=1)
    start = time.monotonic()
    client.v1.customers.list()
    assert time.monotonic() - start >= 0.15


def test_timeout_after_apply(sb: Sandbox, client: Any) -> None:
    sb.timeout_after_apply(path="/v1/payment_intents")
    with pytest.raises(stripe.APIConnectionError):
        client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": True,
            },
            options={"idempotency_key": "unknown-outcome"},
        )
    # the charge happened even though the client saw a timeout
    [pi] = client.v1.payment_intents.list().data
    assert pi.status == "succeeded"
    # retrying with the same key replays the stored outcome instead of charging twice
    again = client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
        },
        options={"idempotency_key": "unknown-outcome"},
    )
    assert again.id == pi.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(client.v1.payment_intents.list().data) == 1


def test_sdk_retry_recovers_from_timeout_with_same_key(sb: Sandbox) -> None:
    client: Any = sb.client(max_network_retries=1)
    sb.timeout_after_apply(path="/v1/customers")
    cus = client.v1.customers.create(params={"email": "r@x.test"})
    assert cus.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(client.v1.customers.list().data) == 1
