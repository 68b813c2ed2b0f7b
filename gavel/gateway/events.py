"""Stripe events: list and retrieve v1 events and v2 thin events (backfill), fetch a thin
event's related object.

Events are opaque payloads to Gavel: these functions return the JSON Stripe sent, as plain
dicts, which the webhook pipeline stores byte for byte like a delivered event.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from gavel.gateway.client import stripe_client
from gavel.gateway.errors import GatewayFinalError, stripe_errors_translated

PAGE_SIZE = 100
THIN_EVENTS_PATH = "/v2/core/events"


def _get(url: str, *, account: str | None, **params: Any) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if account:
        # v2 endpoints name the connected account in Stripe-Context (as the SDK does when it
        # fetches a thin event's related object); v1 in Stripe-Account.
        options["stripe_context" if url.startswith("/v2/") else "stripe_account"] = account
    with stripe_errors_translated():
        response = stripe_client().raw_request("get", url, **params, **options)
    data = response.data
    if not isinstance(data, dict):
        raise GatewayFinalError(f"Stripe answered {url} with a non-object body")
    return data


def events_list(
    *, created_gte: int, account: str | None = None, page_size: int = PAGE_SIZE
) -> Iterator[dict[str, Any]]:
    """Every event created at or after ``created_gte`` (epoch seconds), newest first, page by
    page. ``account`` lists a connected account's events (Stripe-Account)."""
    starting_after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": page_size, "created": {"gte": created_gte}}
        if starting_after:
            params["starting_after"] = starting_after
        page = _get("/v1/events", account=account, **params)
        items = [item for item in page.get("data") or [] if isinstance(item, dict)]
        yield from items
        if not page.get("has_more") or not items:
            return
        starting_after = str(items[-1]["id"])


def event_retrieve(*, event_id: str, account: str | None = None) -> dict[str, Any]:
    return _get(f"/v1/events/{event_id}", account=account)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def thin_events_list(
    *, created_gte: datetime, account: str | None = None, page_size: int = PAGE_SIZE
) -> Iterator[dict[str, Any]]:
    """Every v2 (thin) event created at or after ``created_gte``, newest first, following
    Stripe's ``next_page_url``. ``account`` lists a connected account's events (its events
    carry it as ``context``)."""
    params: dict[str, Any] = {"limit": page_size, "created": {"gte": _rfc3339(created_gte)}}
    url: str | None = THIN_EVENTS_PATH
    while url is not None:
        page = _get(url, account=account, **params)
        yield from (item for item in page.get("data") or [] if isinstance(item, dict))
        next_url = page.get("next_page_url")
        if next_url is not None and not (
            isinstance(next_url, str) and next_url.startswith(THIN_EVENTS_PATH + "?")
        ):
            raise GatewayFinalError(f"Unexpected next_page_url: {next_url!r}")
        url, params = next_url, {}


def thin_event_retrieve(*, event_id: str, account: str | None = None) -> dict[str, Any]:
    return _get(f"{THIN_EVENTS_PATH}/{event_id}", account=account)


def related_object_fetch(*, url: str, account: str | None = None) -> dict[str, Any]:
    """The current state of a thin event's ``related_object`` (its ``url`` is a Stripe API
    path such as ``/v1/payment_intents/pi_123``)."""
    if not url.startswith(("/v1/", "/v2/")) or ".." in url:
        raise GatewayFinalError(f"Unexpected related object url: {url!r}")
    return _get(url, account=account)
