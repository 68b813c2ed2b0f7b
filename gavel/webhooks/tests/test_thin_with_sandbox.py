"""Thin (v2) events end to end: the sandbox's event destination signs and POSTs thin
notifications to ``/webhooks/stripe/thin/`` over real HTTP, a real Celery worker processes
them (fetching each related object through the gateway), and ``webhooks_backfill --thin``
recovers what a destination missed from ``/v2/core/events``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from conftest import wait_for
from gavel.gateway.events import thin_event_retrieve, thin_events_list
from gavel.ledger.models import JournalEntry
from gavel.payments.models import Order
from gavel.payments.services.charging import order_authentication_secret, order_charge
from gavel.payments.services.orders import order_for_sale
from gavel.payments.tests.factories import card_save, sale_make, seller_make, user_make
from gavel.payments.tests.helpers import assert_books_clean
from gavel.webhooks.envelope import envelope_read
from gavel.webhooks.models import WebhookAttempt, WebhookEvent
from gavel.webhooks.services import event_ingest, event_process, events_sweep
from gavel.webhooks.services.backfill import thin_events_backfill
from gavel.webhooks.tests.conftest import Applied

Status = WebhookEvent.Status

PAYMENT_EVENTS = [
    "payment_intent.requires_action",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.dispute.created",
    "charge.dispute.closed",
]
# Lifecycle stages of a PaymentIntent, to check that what handlers saw never went backwards.
INTENT_STAGE = {
    "requires_payment_method": 0,
    "requires_confirmation": 1,
    "requires_action": 2,
    "processing": 3,
    "requires_capture": 4,
    "succeeded": 5,
    "canceled": 5,
}


def thin_destination(
    sandbox: Any, url: str, events: list[str], *, events_from: list[str] | None = None
) -> str:
    """An event destination delivering thin ``v1.*`` notifications; returns its secret."""
    created = sandbox.client().v2.core.event_destinations.create(
        params={
            "name": "gavel thin",
            "type": "webhook_endpoint",
            "event_payload": "thin",
            "enabled_events": [f"v1.{name}" for name in events],
            "events_from": events_from or ["@self"],
            "webhook_endpoint": {"url": url},
            "include": ["webhook_endpoint.signing_secret"],
        }
    )
    return str(created.webhook_endpoint.signing_secret)


def snapshot_endpoint(sandbox: Any, url: str, events: list[str]) -> str:
    created = sandbox.client().v1.webhook_endpoints.create(
        params={"url": url, "enabled_events": events}
    )
    return str(created.secret)


def finished(expected_count: int) -> bool:
    events_sweep()  # requests a drain for anything due (a retry), as beat would
    return (
        WebhookEvent.objects.count() == expected_count
        and not WebhookEvent.objects.filter(status__in=WebhookEvent.UNFINISHED).exists()
    )


def deliver(sandbox: Any) -> None:
    """Release the held deliveries (real HTTP to the live server), wait until the worker has
    finished every event delivered so far, and hold again."""
    sandbox.release_webhooks()
    assert {d["status"] for d in sandbox.deliveries()} == {200}
    delivered = len({d["event_id"] for d in sandbox.deliveries()})
    wait_for(lambda: finished(delivered))
    sandbox.hold_webhooks()


def payment_flow(sandbox: Any) -> dict[str, Any]:
    """A 3-D Secure payment that Stripe captures, then a dispute. Gavel learns the capture
    and the dispute only from webhooks. Returns what Gavel knows of the order, without ids:
    status, totals, history, attempts, payment facts and the journal entries it posted."""
    entries_before = JournalEntry.objects.count()
    seller, _ = seller_make(sandbox)
    buyer = user_make()
    card_save(sandbox, buyer, "pm_card_authenticationRequired")
    sandbox.hold_webhooks()

    order = order_charge(order_id=order_for_sale(sale_id=sale_make(seller, buyer, 3_000).pk).pk)
    deliver(sandbox)
    order.refresh_from_db()
    assert order.status == Order.Status.REQUIRES_ACTION
    intent_id, _, payment_method = order_authentication_secret(order_id=order.pk, user=buyer)
    sandbox.client(django_settings.STRIPE_SECRET_KEY).v1.payment_intents.confirm(
        intent_id, params={"payment_method": payment_method}
    )
    sandbox.complete_3ds(intent_id)
    order.refresh_from_db()
    assert order.status == Order.Status.REQUIRES_ACTION  # Stripe captured; nothing delivered
    deliver(sandbox)
    order.refresh_from_db()
    assert order.status == Order.Status.CAPTURED
    sandbox.open_dispute(order.stripe_charge_id)
    deliver(sandbox)
    sandbox.release_webhooks()

    order.refresh_from_db()
    entries = JournalEntry.objects.order_by("id")[entries_before:]
    return {
        "status": order.status,
        "totals": (
            order.total_minor,
            order.captured_minor,
            order.refunded_minor,
            order.disputed_minor,
            order.stripe_fee_minor,
        ),
        "transitions": list(
            order.transitions.order_by("id").values_list("from_status", "to_status", "operation")
        ),
        "attempts": list(order.attempts.order_by("id").values_list("status", flat=True)),
        # Money facts. The record of each webhook seen (``payment_intent.<status>``) differs by
        # design: a thin event shows the intent as it is when fetched, a snapshot as it was.
        "facts": sorted(
            order.events.exclude(type__startswith="payment_intent.").values_list(
                "type", "amount_minor", "applied"
            )
        ),
        "entries": sorted(
            (entry.kind, tuple(sorted(entry.postings.values_list("amount_minor", flat=True))))
            for entry in entries
        ),
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_money_flow_ends_in_the_same_state_with_thin_or_snapshot_events(
    sandbox: Any, live_server: Any, celery_worker_thread: Any, settings: Any
) -> None:
    client = sandbox.client()
    endpoint = client.v1.webhook_endpoints.create(
        params={"url": f"{live_server.url}/webhooks/stripe/", "enabled_events": PAYMENT_EVENTS}
    )
    settings.STRIPE_WEBHOOK_SECRETS = [endpoint.secret]
    by_snapshots = payment_flow(sandbox)
    snapshot_events = WebhookEvent.objects.count()
    client.v1.webhook_endpoints.update(endpoint.id, params={"disabled": True})
    url = f"{live_server.url}/webhooks/stripe/thin/"
    settings.STRIPE_THIN_WEBHOOK_SECRETS = [thin_destination(sandbox, url, PAYMENT_EVENTS)]

    by_thin_events = payment_flow(sandbox)

    assert by_thin_events == by_snapshots
    assert by_thin_events["status"] == Order.Status.DISPUTED
    assert by_thin_events["attempts"] == ["succeeded"]
    assert [to for _, to, _ in by_thin_events["transitions"]][-2:] == [
        Order.Status.CAPTURED,
        Order.Status.DISPUTED,
    ]
    total, captured = by_thin_events["totals"][:2]
    assert captured == total
    assert by_thin_events["facts"] == [
        ("capture_success", total, True),
        ("dispute_opened", total, True),
    ]
    assert by_thin_events["entries"] != []
    thin = WebhookEvent.objects.filter(source=WebhookEvent.Source.THIN)
    snapshots = WebhookEvent.objects.exclude(source=WebhookEvent.Source.THIN)
    assert thin.count() == snapshots.count() == snapshot_events
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {Status.PROCESSED}
    thin_types = sorted(
        name.removeprefix("v1.") for name in thin.values_list("event_type", flat=True)
    )
    assert sorted(thin_types) == sorted(snapshots.values_list("event_type", flat=True))
    assert_books_clean()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_thin_events_duplicated_and_shuffled_apply_once_and_never_go_backwards(
    sandbox: Any,
    live_server: Any,
    celery_worker_thread: Any,
    applied: Applied,
    settings: Any,
) -> None:
    types = ["payment_intent.created", "payment_intent.succeeded", "payment_intent.processing"]
    url = f"{live_server.url}/webhooks/stripe/thin/"
    settings.STRIPE_THIN_WEBHOOK_SECRETS = [thin_destination(sandbox, url, types)]
    client = sandbox.client()
    sandbox.duplicate_webhooks()
    sandbox.shuffle_webhooks()
    sandbox.hold_webhooks()
    intents = [
        client.v1.payment_intents.create(
            params={"amount": 1_000 + n, "currency": "usd", "payment_method": "pm_card_visa"}
        )
        for n in range(3)
    ]
    sandbox.release_webhooks()  # three created events, each twice, in a shuffled order
    wait_for(lambda: finished(3))
    sandbox.hold_webhooks()
    for intent in intents:
        client.v1.payment_intents.confirm(intent.id)

    sandbox.release_webhooks()  # three succeeded events, each twice, shuffled
    wait_for(lambda: finished(6))

    deliveries = sandbox.deliveries()
    assert len(deliveries) == 12
    assert {d["status"] for d in deliveries} == {200}
    assert list(WebhookEvent.objects.values_list("duplicate_deliveries", flat=True)) == [1] * 6
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {Status.PROCESSED}
    assert sorted(applied.by_event.values()) == [1] * 6
    for intent in intents:
        seen = [e.data_object["status"] for e in applied.events if e.object_id == intent.id]
        assert len(seen) == 2
        stages = [INTENT_STAGE[status] for status in seen]
        assert stages == sorted(stages), seen
        assert applied.state[intent.id] == "succeeded"
    assert all(event.thin for event in applied.events)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_related_object_fetch_failure_is_retried_then_applied(
    sandbox: Any,
    live_server: Any,
    celery_worker_thread: Any,
    applied: Applied,
    fast_retries: Any,
) -> None:
    url = f"{live_server.url}/webhooks/stripe/thin/"
    fast_retries.STRIPE_THIN_WEBHOOK_SECRETS = [
        thin_destination(sandbox, url, ["payment_intent.succeeded"])
    ]
    sandbox.hold_webhooks()
    intent = sandbox.client().v1.payment_intents.create(
        params={
            "amount": 2_500,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    sandbox.fail_requests(500, method="GET", path=f"/v1/payment_intents/{intent.id}")

    sandbox.release_webhooks()
    wait_for(lambda: finished(1))

    event = WebhookEvent.objects.get()
    assert event.status == Status.PROCESSED
    assert list(event.attempts.values_list("outcome", flat=True)) == [
        WebhookAttempt.Outcome.FAILED,
        WebhookAttempt.Outcome.PROCESSED,
    ]
    assert "GatewayRetryableError" in event.attempts.first().error  # type: ignore[union-attr]
    [seen] = applied.events
    assert (seen.id, seen.type, seen.data_object["status"]) == (
        event.stripe_event_id,
        "payment_intent.succeeded",
        "succeeded",
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_thin_backfill_recovers_a_missed_delivery(
    sandbox: Any, live_server: Any, celery_worker_thread: Any, applied: Applied, settings: Any
) -> None:
    url = f"{live_server.url}/webhooks/stripe/thin/"
    settings.STRIPE_THIN_WEBHOOK_SECRETS = [
        thin_destination(sandbox, url, ["payment_intent.succeeded"])
    ]
    client = sandbox.client()
    params = {"currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    delivered = client.v1.payment_intents.create(params={"amount": 1_000, **params})
    wait_for(lambda: finished(1))
    sandbox.set_webhook_transport(lambda url, headers, body: 503)  # the destination is down
    missed = client.v1.payment_intents.create(params={"amount": 2_000, **params})
    assert [d["status"] for d in sandbox.deliveries()] == [200, 503]
    assert WebhookEvent.objects.count() == 1
    out = StringIO()

    call_command("webhooks_backfill", "--thin", stdout=out)

    # Like the v1 backfill it takes every event Stripe lists, subscribed or not: per intent
    # v1.payment_intent.created, v1.charge.succeeded, v1.payment_intent.succeeded.
    assert "platform thin: listed 6, stored 5, already stored 1, unreadable 0" in out.getvalue()
    wait_for(lambda: finished(6))
    recovered = WebhookEvent.objects.get(
        object_id=missed.id, event_type="v1.payment_intent.succeeded"
    )
    assert (recovered.source, recovered.status) == (WebhookEvent.Source.THIN, Status.PROCESSED)
    assert applied.by_event[recovered.stripe_event_id] == 1
    assert sorted(
        (event.object_id, event.type) for event in applied.events if event.object_id == missed.id
    ) == [(missed.id, "payment_intent.created"), (missed.id, "payment_intent.succeeded")]
    assert set(applied.by_event.values()) == {1}
    assert set(
        WebhookEvent.objects.filter(event_type="v1.charge.succeeded").values_list(
            "status", flat=True
        )
    ) == {Status.IGNORED}
    assert delivered.id in {event.object_id for event in applied.events}


def _customers(sandbox: Any, count: int, *, account: str | None = None) -> list[str]:
    client = sandbox.client(stripe_account=account)
    return [
        client.v1.customers.create(params={"email": f"t{n}@example.com"}).id for n in range(count)
    ]


@pytest.mark.django_db
def test_thin_backfill_ingests_missing_events_once_and_pages(sandbox: Any) -> None:
    _customers(sandbox, 5)
    listed = sandbox.list_thin_events(type="v1.customer.created")
    already = listed[0]
    event_ingest(
        envelope=envelope_read(already), body=json.dumps(already), source=WebhookEvent.Source.THIN
    )
    since = datetime.fromtimestamp(sandbox.now(), tz=UTC) - timedelta(minutes=1)

    result = thin_events_backfill(since=since)

    assert (result.listed, result.stored, result.already_stored) == (5, 4, 1)
    stored = WebhookEvent.objects.all()
    assert set(stored.values_list("source", "event_type", "status")) == {
        (WebhookEvent.Source.THIN, "v1.customer.created", Status.PENDING)
    }
    assert sorted(stored.values_list("stripe_event_id", flat=True)) == sorted(
        event["id"] for event in listed
    )
    assert thin_events_backfill(since=since).stored == 0
    ids = [event["id"] for event in thin_events_list(created_gte=since, page_size=2)]
    assert ids == [event["id"] for event in reversed(listed)]
    assert thin_event_retrieve(event_id=ids[0])["snapshot_event"].startswith("evt_")
    assert thin_events_backfill(since=datetime.now(tz=UTC) + timedelta(hours=1)).listed == 0


@pytest.mark.django_db
def test_thin_backfill_of_a_connected_account_stores_its_context(
    sandbox: Any, applied: Applied
) -> None:
    account = str(sandbox.client().v1.accounts.create(params={"type": "express"}).id)
    [customer_id] = _customers(sandbox, 1, account=account)
    sandbox.client().v1.customers.update(
        customer_id, params={"name": "Seen"}, options={"stripe_account": account}
    )
    seen = sandbox.list_thin_events(account=account)[0]
    event_ingest(
        envelope=envelope_read(seen), body=json.dumps(seen), source=WebhookEvent.Source.THIN
    )
    out = StringIO()

    call_command("webhooks_backfill", "--thin", "--known-accounts", stdout=out)

    report = out.getvalue()
    assert f"{account} thin: listed 2, stored 1, already stored 1, unreadable 0" in report
    assert "platform thin: listed" in report
    updated = WebhookEvent.objects.get(event_type="v1.customer.updated")
    assert (updated.account, updated.object_id) == (account, customer_id)
    assert event_process(event_pk=updated.pk) == Status.PROCESSED
    [event] = applied.events
    assert (event.account, event.data_object["name"]) == (account, "Seen")


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_connected_account_thin_events_restrict_then_deauthorize(
    sandbox: Any, live_server: Any, celery_worker_thread: Any, settings: Any
) -> None:
    """A connected account's thin events (``context``): ``v1.account.updated`` is applied from
    the account fetched as that account, and ``v1.account.application.deauthorized``, which
    has no related object, disconnects the seller."""
    from gavel.connect.models import ConnectedAccount
    from gavel.connect.states import AccountStatus

    url = f"{live_server.url}/webhooks/stripe/thin/"
    settings.STRIPE_THIN_WEBHOOK_SECRETS = [
        thin_destination(
            sandbox,
            url,
            ["account.updated", "account.application.deauthorized"],
            events_from=["@accounts"],
        )
    ]
    sandbox.hold_webhooks()
    _, account_id = seller_make(sandbox)  # the seller's row exists before anything is delivered
    deliver(sandbox)
    seller = ConnectedAccount.objects.get(stripe_account_id=account_id)
    assert seller.status == AccountStatus.ENABLED

    sandbox.require_information(account_id, past_due=True)
    deliver(sandbox)
    seller.refresh_from_db()
    assert (seller.status, seller.charges_enabled) == (AccountStatus.RESTRICTED, False)

    sandbox.deauthorize(account_id)
    deliver(sandbox)

    seller.refresh_from_db()
    assert seller.status == AccountStatus.DEAUTHORIZED
    deauthorized = WebhookEvent.objects.get(event_type="v1.account.application.deauthorized")
    assert (deauthorized.account, deauthorized.object_id) == (account_id, "")
    assert set(WebhookEvent.objects.values_list("account", flat=True)) == {account_id}
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {Status.PROCESSED}


@pytest.mark.django_db
def test_a_thin_event_whose_object_is_gone_is_ignored_not_retried(
    sandbox: Any, applied: Applied
) -> None:
    """The seller disconnected before the event was processed: Stripe answers 403 for the
    account's objects, for good. The event ends ignored with the reason, at its first attempt."""
    account = str(sandbox.client().v1.accounts.create(params={"type": "express"}).id)
    [customer_id] = _customers(sandbox, 1, account=account)
    sandbox.client().v1.customers.update(
        customer_id, params={"name": "Seen"}, options={"stripe_account": account}
    )
    updated = next(
        event
        for event in sandbox.list_thin_events(account=account)
        if event["type"] == "v1.customer.updated"
    )
    stored = event_ingest(
        envelope=envelope_read(updated), body=json.dumps(updated), source=WebhookEvent.Source.THIN
    )
    sandbox.deauthorize(account)

    assert stored.event_pk is not None
    assert event_process(event_pk=stored.event_pk) == Status.IGNORED

    event = WebhookEvent.objects.get(pk=stored.event_pk)
    assert event.last_error.startswith("the thin event's related object can no longer be read")
    assert "403" in event.last_error
    assert event.attempts_count == 1
    assert applied.events == []


@pytest.mark.django_db
def test_a_thin_event_fetch_refused_otherwise_is_still_retried(
    sandbox: Any, applied: Applied
) -> None:
    """Only 'gone' answers (403, 404) end an event: another refusal for good (a 400) is a
    failure like any other, retried and in the end dead-lettered for an operator."""
    [customer_id] = _customers(sandbox, 1)
    sandbox.client().v1.customers.update(customer_id, params={"name": "Seen"})
    updated = next(
        event for event in sandbox.list_thin_events() if event["type"] == "v1.customer.updated"
    )
    stored = event_ingest(
        envelope=envelope_read(updated), body=json.dumps(updated), source=WebhookEvent.Source.THIN
    )
    sandbox.fail_requests(400, method="GET", path=f"/v1/customers/{customer_id}")

    assert stored.event_pk is not None
    assert event_process(event_pk=stored.event_pk) == Status.RETRYING
    assert applied.events == []


@pytest.mark.django_db
def test_a_platform_thin_event_refused_403_is_retried_not_ignored(
    sandbox: Any, applied: Applied
) -> None:
    """A 403 on the platform's own object is not an account that left: it is our key refused
    (a restricted key missing a permission). Ignoring it would drop the event without a dead
    letter; it is a failure, retried until the key is fixed."""
    [customer_id] = _customers(sandbox, 1)
    sandbox.client().v1.customers.update(customer_id, params={"name": "Seen"})
    updated = next(
        event for event in sandbox.list_thin_events() if event["type"] == "v1.customer.updated"
    )
    stored = event_ingest(
        envelope=envelope_read(updated), body=json.dumps(updated), source=WebhookEvent.Source.THIN
    )
    sandbox.fail_requests(403, method="GET", path=f"/v1/customers/{customer_id}")

    assert stored.event_pk is not None
    assert event_process(event_pk=stored.event_pk) == Status.RETRYING
    assert applied.events == []
    assert event_process(event_pk=stored.event_pk) == Status.PROCESSED
    [event] = applied.events
    assert (event.account, event.data_object["name"]) == (None, "Seen")
