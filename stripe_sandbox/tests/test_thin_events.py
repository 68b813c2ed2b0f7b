"""Event destinations and v2 thin events, through the official SDK's v2 services."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
import stripe

from stripe_sandbox import Sandbox

from .conftest import DAY, Hooks, body_of, onboarded

THIN_URL = "https://h.test/thin"


def destination(
    client: stripe.StripeClient,
    events: list[str],
    *,
    events_from: list[str] | None = None,
    payload: str = "thin",
) -> Any:
    params: Any = {
        "name": "gavel",
        "type": "webhook_endpoint",
        "event_payload": payload,
        "enabled_events": events,
        "webhook_endpoint": {"url": THIN_URL},
        "include": ["webhook_endpoint.signing_secret", "webhook_endpoint.url"],
    }
    if events_from is not None:
        params["events_from"] = events_from
    return client.v2.core.event_destinations.create(params=params)


def pay(client: stripe.StripeClient, amount: int = 1000) -> Any:
    return client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )


def test_thin_notification_is_signed_and_the_sdk_parses_and_fetches_it(
    sb: Sandbox, client: stripe.StripeClient, hooks: Hooks
) -> None:
    ed = destination(client, ["v1.payment_intent.succeeded"])
    secret = ed.webhook_endpoint.signing_secret
    assert secret.startswith("whsec_")
    assert ed.webhook_endpoint.url == THIN_URL

    pi = pay(client)

    [received] = hooks.received
    assert received["url"] == THIN_URL
    assert received["json"] == {
        "id": received["json"]["id"],
        "object": "v2.core.event",
        "type": "v1.payment_intent.succeeded",
        "livemode": False,
        "created": received["json"]["created"],
        "related_object": {
            "id": pi.id,
            "type": "payment_intent",
            "url": f"/v1/payment_intents/{pi.id}",
        },
        "reason": received["json"]["reason"],
    }
    assert received["json"]["id"].startswith("evt_test_")
    assert received["json"]["reason"]["type"] == "request"
    notification: Any = client.parse_event_notification(
        received["body"], received["headers"]["Stripe-Signature"], secret
    )
    assert type(notification).__name__ == "V1PaymentIntentSucceededEventNotification"
    assert notification.fetch_related_object().status == "succeeded"
    event = notification.fetch_event()
    [snapshot] = sb.list_events(type="payment_intent.succeeded")
    assert event.snapshot_event == snapshot["id"]
    with pytest.raises(stripe.SignatureVerificationError):
        client.parse_event_notification(
            received["body"], received["headers"]["Stripe-Signature"], "whsec_other"
        )


def test_created_is_rfc3339_with_milliseconds_ordered_within_a_second(
    sb: Sandbox, client: stripe.StripeClient
) -> None:
    pay(client)

    events = sb.list_thin_events()

    assert [e["type"] for e in events] == [
        "v1.payment_intent.created",
        "v1.charge.succeeded",
        "v1.payment_intent.succeeded",
    ]
    stamps = [e["created"] for e in events]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 3
    assert all(len(s) == len("2025-10-09T08:53:20.000Z") and s.endswith("Z") for s in stamps)


def test_only_types_stripe_publishes_as_thin_events_get_a_twin(
    sb: Sandbox, client: stripe.StripeClient
) -> None:
    pay(client)
    sb.advance(3 * DAY)  # balance.available has a twin (a singleton related object)

    v1_types = {e["type"] for e in sb.list_events()}
    thin_types = {e["type"] for e in sb.list_thin_events()}

    assert thin_types == {f"v1.{t}" for t in v1_types}
    [available] = sb.list_thin_events(type="v1.balance.available")
    assert available["related_object"] == {"type": "balance", "url": "/v1/balance"}


def test_destination_filters_types_and_accounts(
    sb: Sandbox, client: stripe.StripeClient, hooks: Hooks
) -> None:
    acct = onboarded(sb, client)
    mine = destination(client, ["v1.customer.created"])
    theirs = destination(client, ["v1.customer.created"], events_from=["@accounts"])
    hooks.received.clear()

    client.v1.customers.create(params={"email": "p@example.com"})
    cus = client.v1.customers.create(
        params={"email": "c@example.com"}, options={"stripe_account": acct.id}
    )

    by_destination = {d["endpoint_id"]: d for d in sb.deliveries(event_type="v1.customer.created")}
    assert set(by_destination) == {mine.id, theirs.id}
    connected = json.loads(by_destination[theirs.id]["body"])
    assert connected["context"] == acct.id
    assert connected["related_object"]["id"] == cus.id
    assert "context" not in json.loads(by_destination[mine.id]["body"])
    # the related object is fetched as the connected account (Stripe-Context)
    notification: Any = client.parse_event_notification(
        by_destination[theirs.id]["body"],
        by_destination[theirs.id]["headers"]["Stripe-Signature"],
        theirs.webhook_endpoint.signing_secret,
    )
    assert notification.fetch_related_object().id == cus.id


def test_failed_thin_deliveries_are_retried_like_webhooks(
    sb: Sandbox, client: stripe.StripeClient, hooks: Hooks
) -> None:
    destination(client, ["v1.customer.created"])
    hooks.fail_next = 2

    client.v1.customers.create(params={"email": "r@example.com"})
    sb.advance(300)
    assert [d["status"] for d in sb.deliveries()] == [500, 500]
    sb.advance(1800)

    assert [(d["attempt"], d["status"]) for d in sb.deliveries()] == [(1, 500), (2, 500), (3, 200)]
    assert len(hooks.received) == 1


def test_duplicate_and_held_thin_deliveries(
    sb: Sandbox, client: stripe.StripeClient, hooks: Hooks
) -> None:
    destination(client, ["v1.customer.created"])
    sb.duplicate_webhooks()
    sb.hold_webhooks()

    client.v1.customers.create(params={"email": "d@example.com"})
    assert hooks.received == []
    assert sb.release_webhooks() == 2

    first, second = hooks.received
    assert first["json"]["id"] == second["json"]["id"]


def test_snapshot_destination_receives_v1_events(
    sb: Sandbox, client: stripe.StripeClient, hooks: Hooks
) -> None:
    ed = destination(client, ["customer.created"], payload="snapshot")
    assert ed.snapshot_api_version == sb.api_version

    client.v1.customers.create(params={"email": "s@example.com"})

    [received] = hooks.received
    assert received["json"]["object"] == "event"
    assert received["json"]["type"] == "customer.created"
    secret = ed.webhook_endpoint.signing_secret
    signature = received["headers"]["Stripe-Signature"]
    stripe.Webhook.construct_event(received["body"], signature, secret)


def test_destination_lifecycle(sb: Sandbox, client: stripe.StripeClient, hooks: Hooks) -> None:
    ed = destination(client, ["v1.customer.created"])
    hidden: Any = client.v2.core.event_destinations.retrieve(ed.id)
    assert (hidden.webhook_endpoint.signing_secret, hidden.webhook_endpoint.url) == (None, None)

    disabled: Any = client.v2.core.event_destinations.disable(ed.id)
    assert disabled.status == "disabled"
    assert disabled.status_details.disabled.reason == "user"
    client.v1.customers.create(params={"email": "x@example.com"})
    assert hooks.received == []

    client.v2.core.event_destinations.enable(ed.id)
    updated = client.v2.core.event_destinations.update(
        ed.id, params={"enabled_events": ["v1.customer.created", "v1.customer.updated"]}
    )
    assert updated.enabled_events == ["v1.customer.created", "v1.customer.updated"]
    client.v1.customers.create(params={"email": "y@example.com"})
    assert len(hooks.received) == 1

    ping = client.v2.core.event_destinations.ping(ed.id)
    assert ping.type == "v2.core.event_destination.ping"
    assert hooks.received[-1]["json"]["type"] == "v2.core.event_destination.ping"

    assert [d.id for d in client.v2.core.event_destinations.list().data] == [ed.id]
    client.v2.core.event_destinations.delete(ed.id)
    assert client.v2.core.event_destinations.list().data == []
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v2.core.event_destinations.retrieve(ed.id)
    assert missing.value.http_status == 404


def test_destination_refuses_unknown_types_and_connected_accounts(
    sb: Sandbox, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        destination(client, ["payment_intent.succeeded"])
    assert body_of(unknown.value)["param"] == "enabled_events"
    with pytest.raises(stripe.InvalidRequestError) as extra:
        client.v2.core.event_destinations.create(
            params={  # type: ignore[typeddict-unknown-key]
                "name": "x",
                "type": "webhook_endpoint",
                "event_payload": "thin",
                "enabled_events": ["v1.customer.created"],
                "webhook_endpoint": {"url": THIN_URL},
                "connect": True,
            }
        )
    assert "unknown parameter: connect" in str(extra.value)
    acct = onboarded(sb, client)
    with pytest.raises(stripe.PermissionError):
        client.v2.core.event_destinations.create(
            params={
                "name": "x",
                "type": "webhook_endpoint",
                "event_payload": "thin",
                "enabled_events": ["v1.customer.created"],
                "webhook_endpoint": {"url": THIN_URL},
            },
            options={"stripe_context": acct.id},
        )
    assert sb.objects_of("v2.core.event_destination") == []


def test_list_filters_and_pages_both_ways(sb: Sandbox, client: stripe.StripeClient) -> None:
    for n in range(5):
        client.v1.customers.create(params={"email": f"l{n}@example.com"})
    sb.advance(60)
    late = client.v1.customers.create(params={"email": "late@example.com"})
    created = [e["id"] for e in reversed(sb.list_thin_events(type="v1.customer.created"))]

    first: Any = client.v2.core.events.list(params={"limit": 2, "types": ["v1.customer.created"]})
    assert [e.id for e in first.data] == created[:2]
    assert first.previous_page_url is None
    everything = [e.id for e in first.auto_paging_iter()]
    assert everything == created

    second = client.raw_request("get", first.next_page_url)
    page = json.loads(second.body)
    assert [e["id"] for e in page["data"]] == created[2:4]
    back = json.loads(client.raw_request("get", page["previous_page_url"]).body)
    assert [e["id"] for e in back["data"]] == created[:2]

    since = sb.list_thin_events(type="v1.customer.created")[-1]["created"]
    recent: Any = client.v2.core.events.list(params={"created": {"gte": since}})
    assert [e.id for e in recent.data] == [created[0]]
    assert [e.related_object.id for e in recent.data] == [late.id]
    by_object = client.v2.core.events.list(params={"object_id": late.id})
    assert [e.id for e in by_object.data] == [created[0]]


def test_list_refuses_bad_parameters(client: stripe.StripeClient) -> None:
    for params, param in (
        ({"limit": 0}, "limit"),
        ({"created": {"gte": "yesterday"}}, "created[gte]"),
        ({"types": [f"v1.t{n}" for n in range(21)]}, "types"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v2.core.events.list(params=params)  # type: ignore[arg-type]
        assert body_of(refused.value)["param"] == param
    with pytest.raises(stripe.InvalidRequestError):
        client.raw_request("get", "/v2/core/events?page=not-a-token")
    with pytest.raises(stripe.InvalidRequestError) as mixed:
        client.raw_request("get", "/v2/core/events?page=e30%3D&types[0]=v1.customer.created")
    assert "page cannot be combined" in str(mixed.value)


def test_events_are_scoped_to_their_account_and_kept_30_days(
    sb: Sandbox, client: stripe.StripeClient
) -> None:
    acct = onboarded(sb, client)
    client.v1.customers.create(
        params={"email": "a@example.com"}, options={"stripe_account": acct.id}
    )
    [theirs] = sb.list_thin_events(type="v1.customer.created", account=acct.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v2.core.events.retrieve(theirs["id"])
    fetched = client.v2.core.events.retrieve(theirs["id"], options={"stripe_context": acct.id})
    assert fetched.context == acct.id

    sb.advance(31 * DAY)

    assert sb.list_thin_events(account=acct.id) == []
    assert sb.get_object(theirs["id"]) is None


def _annotations(cls: type) -> dict[str, Any]:
    return {
        k: v
        for k, v in typing.get_type_hints(cls).items()
        if not k.startswith("_") and typing.get_origin(v) is not typing.ClassVar
    }


def _required(hints: dict[str, Any]) -> set[str]:
    return {k for k, v in hints.items() if type(None) not in typing.get_args(v)}


def test_v2_shapes_match_the_sdk_models(sb: Sandbox, client: stripe.StripeClient) -> None:
    """Stripe's fixtures have no v2 objects: the SDK's typed models are the reference."""
    from stripe.v2.core import Event, EventDestination

    ed = destination(client, ["v1.customer.created"])
    client.v1.customers.create(params={"email": "s@example.com"})
    [event] = sb.list_thin_events()
    rendered_destination = client.v2.core.event_destinations.retrieve(ed.id).to_dict()

    event_hints = _annotations(Event)
    destination_hints = _annotations(EventDestination)
    # related_object is documented on every event type with a related object
    assert set(event) == set(event_hints) | {"related_object"}
    assert set(rendered_destination) == set(destination_hints)
    assert _required(event_hints) <= {k for k, v in event.items() if v is not None}
    assert _required(destination_hints) <= {
        k for k, v in rendered_destination.items() if v is not None
    }


def test_every_related_object_url_is_served(
    sb: Sandbox, client: stripe.StripeClient, hooks: Hooks
) -> None:
    """Across every resource, each thin event's ``related_object.url`` answers 200 when fetched
    the way the SDK fetches it (``Stripe-Context`` of the event)."""
    from .test_shapes import _exercise

    _exercise(sb, client, hooks)
    onboarded(sb, client)  # account.updated, capability.updated of a connected account
    deauthorized = {a["id"] for a in sb.objects_of("account") if a.get("_deauthorized")}
    events = [
        e
        for e in sb.objects_of("v2.core.event")
        if e.get("related_object") and e["context"] not in deauthorized  # 403, like Stripe
    ]
    assert deauthorized
    kinds = set()
    for event in events:
        related = event["related_object"]
        headers = {"Authorization": "Bearer sk_test_sandbox"}
        if event["context"]:
            headers["Stripe-Context"] = event["context"]
        response = sb.handle("GET", "http://sandbox.invalid" + related["url"], headers)
        assert response.status == 200, (event["type"], related, response.json())
        if "id" in related:
            assert response.json()["id"] == related["id"]
        kinds.add(related["type"])
    assert kinds == {
        "account",
        "application_fee",
        "balance",
        "capability",
        "charge",
        "customer",
        "dispute",
        "payment_intent",
        "payment_method",
        "refund",
        "setup_intent",
        "transfer",
    }


def test_previous_page_stops_at_the_first_event(sb: Sandbox, client: stripe.StripeClient) -> None:
    for n in range(3):
        client.v1.customers.create(params={"email": f"p{n}@example.com"})
    newest_first = [e["id"] for e in reversed(sb.list_thin_events())]
    first = json.loads(client.raw_request("get", "/v2/core/events", limit=1).body)
    second = json.loads(client.raw_request("get", first["next_page_url"], limit=2).body)
    assert [e["id"] for e in second["data"]] == newest_first[1:3]
    assert second["next_page_url"] is None

    back = json.loads(client.raw_request("get", second["previous_page_url"], limit=2).body)

    assert [e["id"] for e in back["data"]] == newest_first[:1]
    assert back["previous_page_url"] is None
    assert back["next_page_url"] is not None
