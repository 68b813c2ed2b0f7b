"""Intake through Django's test client with raw signed bodies: what is stored, what is refused."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client

from gavel.webhooks.models import WebhookEvent
from gavel.webhooks.tests.conftest import (
    CONNECT_SECRET,
    PLATFORM_PREVIOUS_SECRET,
    THIN_SECRET,
    event_payload,
    signed,
    thin_payload,
)

PLATFORM_URL = "/webhooks/stripe/"
CONNECT_URL = "/webhooks/stripe/connect/"
THIN_URL = "/webhooks/stripe/thin/"

pytestmark = pytest.mark.django_db


def post(url: str, body: bytes, header: str | None) -> Any:
    headers = {"Stripe-Signature": header} if header is not None else {}
    return Client().post(url, data=body, content_type="application/json", headers=headers)


def assert_refused(response: Any, status_code: int, code: str) -> None:
    assert response.status_code == status_code
    error = response.json()["error"]
    assert error["code"] == code
    assert error["type"] == "invalid_request_error"
    assert set(error) == {"type", "code", "message", "fields", "request_id"}
    assert WebhookEvent.objects.count() == 0


def test_signed_event_is_stored_once_and_acknowledged() -> None:
    payload = event_payload("payment_intent.succeeded", object_id="pi_1", created=1_700_000_000)
    body, header = signed(payload)

    response = post(PLATFORM_URL, body, header)

    assert response.status_code == 200
    assert response.json() == {"received": True}
    event = WebhookEvent.objects.get()
    assert event.stripe_event_id == payload["id"]
    assert event.event_type == "payment_intent.succeeded"
    assert event.source == WebhookEvent.Source.PLATFORM
    assert event.status == WebhookEvent.Status.PENDING
    assert event.object_id == "pi_1"
    assert event.object_type == "payment_intent"
    assert event.account == ""
    assert event.livemode is False
    assert event.api_version == "2025-10-29.clover"
    assert int(event.stripe_created_at.timestamp()) == 1_700_000_000
    assert event.payload.encode() == body
    assert event.due_at is not None


def test_duplicate_delivery_is_acknowledged_and_counted() -> None:
    body, header = signed(event_payload())

    first = post(PLATFORM_URL, body, header)
    second = post(PLATFORM_URL, body, header)

    assert (first.status_code, second.status_code) == (200, 200)
    event = WebhookEvent.objects.get()
    assert event.duplicate_deliveries == 1


def test_connect_event_keeps_its_account() -> None:
    body, header = signed(event_payload(account="acct_123"), secret=CONNECT_SECRET)

    response = post(CONNECT_URL, body, header)

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.source, event.account) == (WebhookEvent.Source.CONNECT, "acct_123")


def test_each_endpoint_has_its_own_secrets() -> None:
    body, header = signed(event_payload(account="acct_123"), secret=CONNECT_SECRET)

    assert_refused(post(PLATFORM_URL, body, header), 400, "bad_signature")


def test_rolled_secret_old_and_new_both_accepted() -> None:
    new_body, new_header = signed(event_payload())
    old_body, old_header = signed(event_payload(), secret=PLATFORM_PREVIOUS_SECRET)

    assert post(PLATFORM_URL, new_body, new_header).status_code == 200
    assert post(PLATFORM_URL, old_body, old_header).status_code == 200
    assert WebhookEvent.objects.count() == 2


def test_forged_signature_is_refused() -> None:
    body, _ = signed(event_payload())
    _, forged = signed(event_payload(), secret="whsec_attacker")

    assert_refused(post(PLATFORM_URL, body, forged), 400, "bad_signature")


def test_body_altered_after_signing_is_refused() -> None:
    body, header = signed(event_payload())

    assert_refused(
        post(PLATFORM_URL, body.replace(b"succeeded", b"failed"), header), 400, "bad_signature"
    )


def test_stale_timestamp_is_refused() -> None:
    body, header = signed(event_payload(), timestamp=int(time.time()) - 301)

    assert_refused(post(PLATFORM_URL, body, header), 400, "stale_timestamp")


def test_missing_signature_is_refused() -> None:
    body, _ = signed(event_payload())

    assert_refused(post(PLATFORM_URL, body, None), 400, "missing_signature")


def test_malformed_signature_is_refused() -> None:
    body, _ = signed(event_payload())

    assert_refused(post(PLATFORM_URL, body, "nonsense"), 400, "malformed_signature")


def test_oversize_body_is_refused_413(settings: Any) -> None:
    settings.WEBHOOK_MAX_BODY_BYTES = 1024
    payload = event_payload(data_object={"object": "charge", "description": "x" * 2000})
    body, header = signed(payload)

    assert_refused(post(PLATFORM_URL, body, header), 413, "body_too_large")


def test_malformed_json_is_refused() -> None:
    body, header = signed(b'{"id": "evt_1", "object": "event", ')

    assert_refused(post(PLATFORM_URL, body, header), 400, "malformed_json")


def test_invalid_utf8_is_refused() -> None:
    # Signature checks read the body with U+FFFD for bad bytes, so this header verifies.
    _, header = signed('{"id": "\ufffd"}'.encode())

    assert_refused(post(PLATFORM_URL, b'{"id": "\xff"}', header), 400, "malformed_json")


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"object": "charge", "id": "ch_1"},
        {"object": "event", "id": "ch_1", "type": "x", "created": 1, "livemode": False},
        {"object": "event", "id": "evt_1", "created": 1, "livemode": False, "data": {}},
        {
            "object": "event",
            "id": "evt_1",
            "type": "a.b",
            "livemode": False,
            "data": {"object": {}},
        },
        {"object": "event", "id": "evt_1", "type": "a.b", "created": True, "livemode": False},
        {
            "object": "event",
            "id": "evt_1",
            "type": "a.b",
            "created": "yesterday",
            "livemode": False,
        },
        {"object": "event", "id": "evt_1", "type": "a.b", "created": 1, "data": {"object": {}}},
        {"object": "event", "id": "evt_1", "type": "a.b", "created": 1, "livemode": False},
        {"object": "event", "id": "evt_1", "type": "", "created": 1, "livemode": False},
        # A time no datetime holds (year 31,690,708): refused, not a 500.
        {
            "object": "event",
            "id": "evt_1",
            "type": "a.b",
            "created": 10**15,
            "livemode": False,
            "data": {"object": {}},
        },
    ],
)
def test_json_that_is_not_an_event_is_refused(payload: Any) -> None:
    body, header = signed(json.dumps(payload).encode())

    assert_refused(post(PLATFORM_URL, body, header), 400, "not_an_event")


def test_live_event_on_test_platform_is_refused() -> None:
    body, header = signed(event_payload(livemode=True))

    assert_refused(post(PLATFORM_URL, body, header), 400, "livemode_mismatch")


def test_live_connect_endpoint_keeps_test_events_ignored(settings: Any) -> None:
    settings.STRIPE_SECRET_KEY = "sk_live_gavel"
    body, header = signed(event_payload(account="acct_9", livemode=False), secret=CONNECT_SECRET)

    response = post(CONNECT_URL, body, header)

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.IGNORED
    assert event.due_at is None
    assert "test-mode" in event.last_error


def test_live_platform_refuses_test_events(settings: Any) -> None:
    settings.STRIPE_SECRET_KEY = "sk_live_gavel"
    body, header = signed(event_payload(livemode=False))

    assert_refused(post(PLATFORM_URL, body, header), 400, "livemode_mismatch")


def test_thin_event_is_stored(settings: Any) -> None:
    settings.STRIPE_THIN_WEBHOOK_SECRETS = [THIN_SECRET]
    payload = thin_payload(related_id="cus_1", context="acct_7")
    body, header = signed(payload, secret=THIN_SECRET)

    response = post(THIN_URL, body, header)

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.source == WebhookEvent.Source.THIN
    assert (event.object_id, event.object_type, event.account) == ("cus_1", "customer", "acct_7")
    assert event.stripe_created_at.isoformat() == "2026-11-25T08:00:00.123000+00:00"


def test_thin_endpoint_without_secret_refuses_everything() -> None:
    body, header = signed(thin_payload(related_id="cus_1"), secret=THIN_SECRET)

    assert_refused(post(THIN_URL, body, header), 400, "no_secret_configured")


def test_get_is_not_allowed() -> None:
    response = Client().get(PLATFORM_URL)

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"
