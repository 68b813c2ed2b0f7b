"""Request/response behaviour: idempotency, strictness, pagination, auth, expand, versions."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import stripe

from stripe_sandbox import DEFAULT_API_VERSION, Sandbox
from stripe_sandbox.encoding import decode_form, encode_form

from .conftest import DAY, body_of


def test_idempotent_replay(sb: Sandbox, client: Any) -> None:
    opts = {"idempotency_key": "order-1"}
    first = client.v1.customers.create(params={"email": "a@x.test"}, options=opts)
    again = client.v1.customers.create(params={"email": "a@x.test"}, options=opts)
    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert again.last_response.idempotency_key == "order-1"
    assert len(client.v1.customers.list().data) == 1


def test_idempotency_mismatch(client: Any) -> None:
    opts = {"idempotency_key": "k-2"}
    client.v1.customers.create(params={"email": "a@x.test"}, options=opts)
    with pytest.raises(stripe.IdempotencyError) as e:
        client.v1.customers.create(params={"email": "b@x.test"}, options=opts)
    assert e.value.http_status == 400
    assert body_of(e.value)["type"] == "idempotency_error"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.payment_intents.create(params={"amount": 100, "currency": "usd"}, options=opts)


def test_idempotency_scoped_per_account(sb: Sandbox, client: Any) -> None:
    acct = client.v1.accounts.create(params={"type": "express"})
    a = client.v1.customers.create(options={"idempotency_key": "same"})
    b = client.v1.customers.create(options={"idempotency_key": "same", "stripe_account": acct.id})
    assert a.id != b.id


def test_idempotency_in_flight_409(sb: Sandbox, client: Any) -> None:
    sb.add_latency(0.3, path="/v1/customers", times=1)
    results: list[Any] = []

    def slow() -> None:
        results.append(client.v1.customers.create(options={"idempotency_key": "busy"}))

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.1)
    with pytest.raises(stripe.APIError) as e:
        client.v1.customers.create(options={"idempotency_key": "busy"})
    t.join()
    assert e.value.http_status == 409
    assert body_of(e.value)["type"] == "idempotency_error"
    assert len(results) == 1
    replay = client.v1.customers.create(options={"idempotency_key": "busy"})
    assert replay.id == results[0].id


def test_idempotency_keys_expire_after_24h(sb: Sandbox, client: Any) -> None:
    opts = {"idempotency_key": "old"}
    first = client.v1.customers.create(params={"email": "a@x.test"}, options=opts)
    sb.advance(DAY - 1)
    assert client.v1.customers.create(params={"email": "a@x.test"}, options=opts).id == first.id
    sb.advance(1)
    fresh = client.v1.customers.create(params={"email": "other@x.test"}, options=opts)
    assert fresh.id != first.id


def test_idempotency_500_not_stored_but_400_is(sb: Sandbox, client: Any) -> None:
    sb.fail_requests(500, path="/v1/customers")
    with pytest.raises(stripe.APIError) as e:
        client.v1.customers.create(options={"idempotency_key": "retry-me"})
    assert e.value.http_status == 500
    assert client.v1.customers.list().data == []
    created = client.v1.customers.create(options={"idempotency_key": "retry-me"})
    assert "Idempotent-Replayed" not in created.last_response.headers
    opts = {"idempotency_key": "bad"}
    params = {"amount": 1, "currency": "usd"}
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(params=params, options=opts)
    with pytest.raises(stripe.InvalidRequestError) as e2:
        client.v1.payment_intents.create(params=params, options=opts)
    assert e2.value.headers is not None
    assert e2.value.headers["Idempotent-Replayed"] == "true"


def test_unknown_and_missing_params(client: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.customers.create(params={"emial": "typo@x.test"})
    assert str(e.value.user_message) == "Received unknown parameter: emial"
    assert e.value.param == "emial"
    assert e.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "transfer_data": {"destination": "acct_x", "foo": "1"},
            }
        )
    assert e.value.param == "transfer_data[foo]"
    assert "Received unknown parameter: transfer_data[foo]" in str(e.value.user_message)
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.payment_intents.create(params={"currency": "usd"})
    assert str(e.value.user_message) == "Missing required param: amount."
    assert e.value.param == "amount"
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.payment_intents.create(params={"amount": "ten", "currency": "usd"})
    assert e.value.param == "amount"
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd", "capture_method": "later"}
        )
    assert e.value.param == "capture_method"
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.customers.list(params={"limit": 101})
    assert e.value.param == "limit"
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.webhook_endpoints.create(params={"url": "https://x.test"})
    assert e.value.param == "enabled_events"


def test_unknown_url_and_missing_object(client: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.payment_intents.retrieve("pi_nope")
    assert e.value.http_status == 404
    assert e.value.code == "resource_missing"
    assert "No such payment_intent: 'pi_nope'" in str(e.value.user_message)
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.raw_request("get", "/v1/definitely_not_here")
    assert e.value.http_status == 404


def test_pagination(sb: Sandbox, client: Any) -> None:
    ids = []
    for i in range(7):
        ids.append(client.v1.customers.create(params={"name": f"c{i}"}).id)
        sb.advance(1)
    newest_first = list(reversed(ids))
    page = client.v1.customers.list(params={"limit": 3})
    assert [c.id for c in page.data] == newest_first[:3]
    assert page.has_more is True
    assert page.url == "/v1/customers"
    page2 = client.v1.customers.list(params={"limit": 3, "starting_after": page.data[-1].id})
    assert [c.id for c in page2.data] == newest_first[3:6]
    last = client.v1.customers.list(params={"limit": 3, "starting_after": page2.data[-1].id})
    assert [c.id for c in last.data] == newest_first[6:]
    assert last.has_more is False
    back = client.v1.customers.list(params={"limit": 2, "ending_before": page2.data[0].id})
    assert [c.id for c in back.data] == newest_first[1:3]
    assert back.has_more is True
    assert [c.id for c in page.auto_paging_iter()] == newest_first
    created = client.v1.customers.list(params={"created": {"gte": sb.now() - 2}})
    assert [c.id for c in created.data] == newest_first[:2]


def test_auth(sb: Sandbox) -> None:
    bad = stripe.StripeClient(
        "sk_test_wrong_key_1234",
        http_client=sb.http_client(),
        base_addresses={"api": sb.base_url},
    )
    with pytest.raises(stripe.AuthenticationError) as e:
        bad.v1.customers.list()
    assert e.value.http_status == 401
    assert "Invalid API Key provided" in str(e.value.user_message)
    import base64

    basic = base64.b64encode(b"sk_test_sandbox:").decode()
    ok = sb.handle("GET", "/v1/customers", {"Authorization": f"Basic {basic}"}, None)
    assert ok.status == 200
    resp = sb.handle("GET", "/v1/customers", {}, None)
    assert resp.status == 401
    assert "did not provide an API key" in resp.json()["error"]["message"]
    assert resp.headers["Request-Id"].startswith("req_")


def test_stripe_version_echo(sb: Sandbox) -> None:
    client: Any = stripe.StripeClient(
        "sk_test_sandbox",
        http_client=sb.http_client(),
        base_addresses={"api": sb.base_url},
        stripe_version="2024-06-20",
    )
    cus = client.v1.customers.create()
    assert cus.last_response.headers["Stripe-Version"] == "2024-06-20"
    resp = sb.handle("GET", "/v1/customers", {"Authorization": "Bearer sk_test_sandbox"}, None)
    assert resp.headers["Stripe-Version"] == DEFAULT_API_VERSION


def test_expand(client: Any) -> None:
    cus = client.v1.customers.create()
    pi = client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "customer": cus.id,
            "payment_method": "pm_card_visa",
            "setup_future_usage": "off_session",
            "confirm": True,
            "expand": ["customer", "payment_method", "latest_charge.balance_transaction"],
        }
    )
    assert pi.customer.id == cus.id
    assert pi.payment_method.customer == cus.id
    assert pi.latest_charge.balance_transaction.object == "balance_transaction"
    listed = client.v1.payment_intents.list(params={"expand": ["data.latest_charge"]})
    assert listed.data[0].latest_charge.object == "charge"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.retrieve(pi.id, params={"expand": ["nonsense"]})


def test_global_default_http_client(sb: Sandbox) -> None:
    saved = (stripe.default_http_client, stripe.api_key, stripe.api_base)
    try:
        stripe.default_http_client = sb.http_client()
        stripe.api_key = "sk_test_sandbox"
        stripe.api_base = sb.base_url
        cus = stripe.Customer.create(email="global@x.test")
        assert stripe.Customer.retrieve(cus.id).email == "global@x.test"
    finally:
        stripe.default_http_client, stripe.api_key, stripe.api_base = saved


def test_form_encoding_roundtrip() -> None:
    params = {"a": {"b": ["x", "y"], "c": {"d": "1"}}, "e": ["1"], "f": True}
    assert decode_form(encode_form(params)) == {
        "a": {"b": ["x", "y"], "c": {"d": "1"}},
        "e": ["1"],
        "f": "true",
    }
    assert decode_form("expand[]=a&expand[]=b&items[1]=z&items[0]=y") == {
        "expand": ["a", "b"],
        "items": ["y", "z"],
    }


def test_update_metadata_and_events_previous_attributes(sb: Sandbox, client: Any) -> None:
    cus = client.v1.customers.create(params={"metadata": {"a": "1"}})
    client.v1.customers.update(cus.id, params={"name": "New", "metadata": {"a": "2"}})
    ev = client.v1.events.list(params={"type": "customer.updated"}).data[0]
    assert ev.data.previous_attributes.to_dict() == {"name": None, "metadata": {"a": "1"}}
    assert ev.request.id.startswith("req_")
    assert ev.request.idempotency_key
    assert ev.livemode is False
    assert ev.api_version == DEFAULT_API_VERSION


def test_async_client(sb: Sandbox) -> None:
    import asyncio

    client: Any = sb.client()

    async def go() -> Any:
        cus = await client.v1.customers.create_async(params={"email": "async@x.test"})
        return await client.v1.customers.retrieve_async(cus.id)

    assert asyncio.run(go()).email == "async@x.test"


def test_search(sb: Sandbox, client: Any) -> None:
    cus = client.v1.customers.create(params={"email": "find@x.test", "name": "Ada Lovelace"})
    client.v1.customers.create(params={"email": "other@x.test"})
    pi = client.v1.payment_intents.create(
        params={
            "amount": 4200,
            "currency": "usd",
            "customer": cus.id,
            "metadata": {"order_id": "A-17"},
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    client.v1.payment_intents.create(params={"amount": 999, "currency": "usd"})
    found = client.v1.payment_intents.search(params={"query": "metadata['order_id']:'A-17'"})
    assert [p.id for p in found.data] == [pi.id]
    assert found.object == "search_result"
    both = client.v1.payment_intents.search(params={"query": "status:'succeeded' AND amount>4000"})
    assert [p.id for p in both.data] == [pi.id]
    either = client.v1.payment_intents.search(params={"query": "amount:999 OR amount:4200"})
    assert len(either.data) == 2
    assert len(client.v1.payment_intents.search(params={"query": "-amount:999"}).data) == 1
    assert [c.id for c in client.v1.customers.search(params={"query": "name~'lovelace'"}).data] == [
        cus.id
    ]
    charges = client.v1.charges.search(params={"query": f"customer:'{cus.id}'", "limit": 1})
    assert charges.data[0].payment_intent == pi.id
    assert client.v1.payment_intents.retrieve(pi.id).id == pi.id
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.search(params={"query": "email is find"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.search(params={"query": "email:'a' AND name:'b' OR name:'c'"})


def test_metadata_limits(client: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.customers.create(params={"metadata": {"k" * 41: "v"}})
    assert e.value.param == f"metadata[{'k' * 41}]"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create(params={"metadata": {"k": "v" * 501}})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create(params={"metadata": {f"k{i}": "v" for i in range(51)}})
    cus = client.v1.customers.create(params={"metadata": {"keep": "1", "drop": ""}})
    assert cus.metadata.to_dict() == {"keep": "1"}
