"""Stripe events: list and retrieve v1 events (backfill), fetch a thin event's related object.

Events are opaque payloads to Gavel: these functions return the JSON Stripe sent, as plain
dicts, which the webhook pipeline stores byte for byte like a delivered event.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gavel.gateway.client import stripe_client
from gavel.gateway.errors import GatewayFinalError, stripe_errors_translated

PAGE_SIZE = 100


def _get(url: str, *, account: str | None, **params: Any) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if account:
        options["stripe_account"] = account
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


def related_object_fetch(*, url: str, account: str | None = None) -> dict[str, Any]:
    """The current state of a thin event's ``related_object`` (its ``url`` is a Stripe API
    path such as ``/v1/payment_intents/pi_123``)."""
    if not url.startswith(("/v1/", "/v2/")) or ".." in url:
        raise GatewayFinalError(f"Unexpected related object url: {url!r}")
    return _get(url, account=account)
