"""Against the Stripe sandbox through the official SDK: thin events fetch their object, backfill
lists /v1/events, and the sandbox's own signed deliveries (duplicated, shuffled) go through
intake over real HTTP to a real worker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from conftest import wait_for
from gavel.gateway.errors import GatewayFinalError
from gavel.gateway.events import event_retrieve, related_object_fetch
from gavel.webhooks.envelope import envelope_read
from gavel.webhooks.models import WebhookEvent
from gavel.webhooks.services import event_ingest, event_process, events_backfill
from gavel.webhooks.tests.conftest import Applied, thin_payload

Status = WebhookEvent.Status


def customers_create(sandbox: Any, count: int, *, account: str | None = None) -> list[str]:
    client = sandbox.client(stripe_account=account)
    return [
        client.v1.customers.create(params={"email": f"c{number}@example.com"}).id
        for number in range(count)
    ]


def connected_account(sandbox: Any) -> str:
    account = sandbox.client().v1.accounts.create(params={"type": "express"})
    return str(account.id)


def store_thin(payload: dict[str, Any]) -> int:
    result = event_ingest(
        envelope=envelope_read(payload), body=json.dumps(payload), source=WebhookEvent.Source.THIN
    )
    assert result.event_pk is not None
    return result.event_pk


@pytest.mark.django_db
def test_thin_event_is_applied_with_the_object_fetched_from_stripe(
    sandbox: Any, applied: Applied
) -> None:
    [customer_id] = customers_create(sandbox, 1)
    sandbox.client().v1.customers.update(customer_id, params={"name": "Renamed"})
    payload = thin_payload("v1.customer.updated", related_id=customer_id)

    assert event_process(event_pk=store_thin(payload)) == Status.PROCESSED

    [seen] = applied.events
    assert (seen.id, seen.type, seen.thin) == (payload["id"], "customer.updated", True)
    assert seen.data_object["id"] == customer_id
    assert seen.data_object["name"] == "Renamed"


@pytest.mark.django_db
def test_thin_event_of_a_connected_account_fetches_as_that_account(
    sandbox: Any, applied: Applied
) -> None:
    account = connected_account(sandbox)
    [customer_id] = customers_create(sandbox, 1, account=account)
    payload = thin_payload("v1.customer.updated", related_id=customer_id, context=account)

    assert event_process(event_pk=store_thin(payload)) == Status.PROCESSED

    assert applied.events[0].data_object["id"] == customer_id
    assert applied.events[0].account == account


@pytest.mark.django_db
def test_thin_event_whose_object_does_not_exist_is_ignored_with_the_reason(
    sandbox: Any, applied: Applied
) -> None:
    """Stripe answers 404 for good: retrying could only dead-letter it (a refusal that is
    not 'gone' still retries: test_thin_with_sandbox)."""
    payload = thin_payload("v1.customer.updated", related_id="cus_missing")
    event_pk = store_thin(payload)

    assert event_process(event_pk=event_pk) == Status.IGNORED

    last_error = WebhookEvent.objects.get(pk=event_pk).last_error
    assert last_error.startswith("the thin event's related object can no longer be read (404")
    assert applied.events == []


def test_related_object_url_must_be_an_api_path() -> None:
    with pytest.raises(GatewayFinalError):
        related_object_fetch(url="https://evil.example/v1/customers/cus_1")


@pytest.mark.django_db
def test_backfill_ingests_the_missing_events_once(sandbox: Any) -> None:
    customers_create(sandbox, 5)
    listed = sandbox.list_events()
    assert len(listed) == 5
    already = listed[0]
    event_ingest(
        envelope=envelope_read(already),
        body=json.dumps(already),
        source=WebhookEvent.Source.PLATFORM,
    )
    since = datetime.fromtimestamp(sandbox.now(), tz=UTC) - timedelta(days=1)

    result = events_backfill(since=since)

    assert (result.listed, result.stored, result.already_stored) == (5, 4, 1)
    assert WebhookEvent.objects.count() == 5
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {Status.PENDING}
    assert events_backfill(since=since).stored == 0


@pytest.mark.django_db
def test_backfill_pages_through_every_event(sandbox: Any) -> None:
    from gavel.gateway.events import events_list

    customers_create(sandbox, 7)

    ids = [event["id"] for event in events_list(created_gte=0, page_size=3)]

    assert len(ids) == len(set(ids)) == 7
    assert event_retrieve(event_id=ids[0])["id"] == ids[0]


@pytest.mark.django_db
def test_backfill_command_covers_platform_and_known_accounts(sandbox: Any) -> None:
    account = connected_account(sandbox)
    customers_create(sandbox, 2)
    customers_create(sandbox, 3, account=account)
    seen = sandbox.list_events(account=account)[0]
    event_ingest(
        envelope=envelope_read(seen), body=json.dumps(seen), source=WebhookEvent.Source.CONNECT
    )
    out = StringIO()

    call_command("webhooks_backfill", "--known-accounts", stdout=out)

    report = out.getvalue()
    assert f"{account}: listed 3, stored 2, already stored 1" in report
    assert "platform: listed" in report
    stored = WebhookEvent.objects.filter(event_type="customer.created")
    assert stored.filter(account=account).count() == 3
    assert stored.filter(account="").count() == 2
    assert set(stored.filter(account=account).values_list("source", flat=True)) == {"connect"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_sandbox_deliveries_duplicated_and_shuffled_are_applied_once(
    sandbox: Any, live_server: Any, celery_worker_thread: Any, applied: Applied, settings: Any
) -> None:
    endpoint = sandbox.client().v1.webhook_endpoints.create(
        params={"url": f"{live_server.url}/webhooks/stripe/", "enabled_events": ["*"]}
    )
    settings.STRIPE_WEBHOOK_SECRETS = [endpoint.secret]
    sandbox.duplicate_webhooks()
    sandbox.shuffle_webhooks()
    sandbox.hold_webhooks()
    customer_ids = customers_create(sandbox, 3)
    for customer_id in customer_ids:
        sandbox.client().v1.customers.update(customer_id, params={"name": "Final"})

    sandbox.release_webhooks()
    sandbox.deliver_pending()

    deliveries = sandbox.deliveries()
    assert len(deliveries) == 12
    assert {delivery["status"] for delivery in deliveries} == {200}
    wait_for(lambda: WebhookEvent.objects.filter(status__in=WebhookEvent.UNFINISHED).count() == 0)
    assert WebhookEvent.objects.count() == 6
    assert sum(WebhookEvent.objects.values_list("duplicate_deliveries", flat=True)) == 6
    assert sorted(WebhookEvent.objects.values_list("status", flat=True)) == [
        Status.IGNORED,  # customer.created: no handler
        Status.IGNORED,
        Status.IGNORED,
        Status.PROCESSED,  # customer.updated
        Status.PROCESSED,
        Status.PROCESSED,
    ]
    assert list(applied.by_event.values()) == [1, 1, 1]
    assert {event.data_object["name"] for event in applied.events} == {"Final"}
