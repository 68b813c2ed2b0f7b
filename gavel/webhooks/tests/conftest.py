"""Fixtures of the webhook tests: signed Stripe-shaped events and handlers registered per test."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connections

from gavel.gateway.webhooks import signature_header
from gavel.webhooks import registry
from gavel.webhooks.models import WebhookEvent
from gavel.webhooks.registry import IncomingEvent, Ordering, handler_unregister, webhook_handler

PLATFORM_SECRET = "whsec_test_platform_current"
PLATFORM_PREVIOUS_SECRET = "whsec_test_platform_previous"
CONNECT_SECRET = "whsec_test_connect"
THIN_SECRET = "whsec_test_thin"

_sequence = itertools.count(1)


def event_id_new() -> str:
    return f"evt_test_{time.time_ns()}_{next(_sequence)}"


def event_payload(
    event_type: str = "payment_intent.succeeded",
    *,
    data_object: dict[str, Any] | None = None,
    object_id: str | None = None,
    created: int | None = None,
    event_id: str | None = None,
    livemode: bool = False,
    account: str | None = None,
    previous_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    obj = dict(data_object or {"object": "payment_intent", "status": "succeeded"})
    obj.setdefault("id", object_id or f"pi_test_{next(_sequence)}")
    payload: dict[str, Any] = {
        "id": event_id or event_id_new(),
        "object": "event",
        "api_version": "2025-10-29.clover",
        "created": created if created is not None else int(time.time()),
        "data": {"object": obj},
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    if previous_attributes is not None:
        payload["data"]["previous_attributes"] = previous_attributes
    if account is not None:
        payload["account"] = account
    return payload


def thin_payload(
    event_type: str = "v1.customer.updated",
    *,
    related_id: str,
    related_type: str = "customer",
    url: str | None = None,
    context: str | None = None,
    event_id: str | None = None,
    livemode: bool = False,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": event_id or event_id_new(),
        "object": "v2.core.event",
        "type": event_type,
        "livemode": livemode,
        "created": "2026-11-25T08:00:00.123Z",
        "related_object": {
            "id": related_id,
            "type": related_type,
            "url": url or f"/v1/{related_type}s/{related_id}",
        },
    }
    if context is not None:
        payload["context"] = context
    return payload


def signed(
    payload: dict[str, Any] | bytes,
    *,
    secret: str = PLATFORM_SECRET,
    timestamp: int | None = None,
) -> tuple[bytes, str]:
    """The body and the Stripe-Signature header Stripe would send for it."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload, indent=2).encode()
    header = signature_header(
        payload=body,
        secret=secret,
        timestamp=timestamp if timestamp is not None else int(time.time()),
    )
    return body, header


class Applied:
    """What test handlers saw: every application, per object, thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[IncomingEvent] = []
        self.state: dict[str, str] = {}
        self.by_event: dict[str, int] = defaultdict(int)

    def record(self, event: IncomingEvent) -> None:
        with self.lock:
            self.events.append(event)
            self.by_event[event.id] += 1
            if event.object_id:
                self.state[event.object_id] = str(event.data_object.get("status"))


@pytest.fixture
def applied() -> Iterator[Applied]:
    """Test handlers: ``test.apply`` and ``payment_intent.*`` record what they apply;
    ``test.poison`` always fails; ``test.refetch`` is a REFETCH type."""
    seen = Applied()
    # The domain apps' own handlers for these types step aside for the test, and come back.
    saved_handlers = dict(registry._handlers)
    saved_orderings = dict(registry._orderings)
    types = (
        "test.apply",
        "payment_intent.created",
        "payment_intent.processing",
        "payment_intent.requires_action",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "customer.updated",
    )

    handler_unregister(*types)

    @webhook_handler(*types)
    def apply(event: IncomingEvent) -> None:
        seen.record(event)

    @webhook_handler("test.poison")
    def poison(event: IncomingEvent) -> None:
        raise RuntimeError("poison event: always fails")

    @webhook_handler("test.refetch", ordering=Ordering.REFETCH)
    def refetch(event: IncomingEvent) -> None:
        seen.record(event)

    yield seen
    handler_unregister(*types, "test.poison", "test.refetch")
    registry._handlers.update(saved_handlers)
    registry._orderings.update(saved_orderings)


@pytest.fixture(autouse=True)
def drain_signal_clear() -> None:
    """No drain request left pending by another test suppresses this test's own."""
    from gavel.webhooks.services.drain import drain_signal_reset

    drain_signal_reset()


@pytest.fixture
def fast_retries(settings: Any) -> Any:
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    settings.WEBHOOK_RETRY_MAX_SECONDS = 0
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    settings.WEBHOOK_SWEEP_AFTER_SECONDS = 0
    return settings


def statuses() -> dict[str, str]:
    return dict(WebhookEvent.objects.values_list("stripe_event_id", "status"))


@contextmanager
def fresh_connections() -> Iterator[None]:
    """Close this thread's connections afterwards (threads that posted or processed)."""
    try:
        yield
    finally:
        connections.close_all()
