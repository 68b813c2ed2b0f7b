"""Forwarding to the legacy portal: a real HTTP server on 127.0.0.1 receives the event re-signed
with the portal's own secret, with the same retries and attempt audit as handlers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gavel.gateway.webhooks import signature_verify
from gavel.webhooks.envelope import envelope_read
from gavel.webhooks.models import WebhookAttempt, WebhookEvent
from gavel.webhooks.services import event_ingest, event_process
from gavel.webhooks.services.forwarding import ForwardFailed, event_forward, legacy_owns
from gavel.webhooks.tests.conftest import Applied, event_payload

pytestmark = pytest.mark.django_db

LEGACY_SECRET = "whsec_legacy_portal"
Status = WebhookEvent.Status
Outcome = WebhookAttempt.Outcome


@dataclass
class LegacyPortal:
    url: str
    answers: list[int] = field(default_factory=list)  # statuses to answer, then 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    followed: list[str] = field(default_factory=list)  # GETs of a redirect's target


@pytest.fixture
def legacy_portal(settings: Any) -> Iterator[LegacyPortal]:
    portal = LegacyPortal(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            portal.received.append((dict(self.headers), body))
            status = portal.answers.pop(0) if portal.answers else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/login")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            portal.followed.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    portal.url = f"http://127.0.0.1:{server.server_address[1]}/stripe/webhooks"
    settings.LEGACY_WEBHOOK_URL = portal.url
    settings.LEGACY_WEBHOOK_SECRET = LEGACY_SECRET
    settings.LEGACY_FORWARD_ACCOUNTS = ["acct_legacy"]
    settings.LEGACY_FORWARD_METADATA = ["owner=legacy", "malformed"]
    yield portal
    server.shutdown()
    server.server_close()


def store(payload: dict[str, Any]) -> int:
    body = json.dumps(payload, indent=2)
    result = event_ingest(
        envelope=envelope_read(payload), body=body, source=WebhookEvent.Source.CONNECT
    )
    assert result.event_pk is not None
    return result.event_pk


def test_event_of_a_legacy_account_is_forwarded_resigned(
    legacy_portal: LegacyPortal, applied: Applied
) -> None:
    payload = event_payload("test.apply", account="acct_legacy")
    event_pk = store(payload)

    assert event_process(event_pk=event_pk) == Status.FORWARDED

    assert applied.by_event == {}
    [(headers, body)] = legacy_portal.received
    assert body == WebhookEvent.objects.get(pk=event_pk).payload.encode()
    assert (
        signature_verify(payload=body, header=headers["Stripe-Signature"], secrets=[LEGACY_SECRET])
        == LEGACY_SECRET
    )
    assert headers["Content-Type"].startswith("application/json")
    attempt = WebhookAttempt.objects.get(event_id=event_pk)
    assert (attempt.action, attempt.outcome) == ("forward", Outcome.FORWARDED)


def test_event_whose_object_metadata_names_legacy_is_forwarded(
    legacy_portal: LegacyPortal, applied: Applied
) -> None:
    payload = event_payload(
        "test.apply",
        data_object={"object": "payment_intent", "metadata": {"owner": "legacy"}},
    )

    assert event_process(event_pk=store(payload)) == Status.FORWARDED

    assert len(legacy_portal.received) == 1
    assert applied.by_event == {}


def test_other_events_are_handled_here(legacy_portal: LegacyPortal, applied: Applied) -> None:
    payload = event_payload(
        "test.apply",
        account="acct_ours",
        data_object={"object": "payment_intent", "metadata": {"owner": "gavel"}},
    )

    assert event_process(event_pk=store(payload)) == Status.PROCESSED

    assert legacy_portal.received == []
    assert applied.by_event == {payload["id"]: 1}


def test_failed_forward_is_retried_and_audited(
    legacy_portal: LegacyPortal, applied: Applied
) -> None:
    legacy_portal.answers = [500]
    event_pk = store(event_payload("test.apply", account="acct_legacy"))

    assert event_process(event_pk=event_pk) == Status.RETRYING
    assert event_process(event_pk=event_pk) == Status.FORWARDED

    attempts = list(WebhookAttempt.objects.filter(event_id=event_pk).order_by("number"))
    assert [(a.number, a.action, a.outcome) for a in attempts] == [
        (1, "forward", Outcome.FAILED),
        (2, "forward", Outcome.FORWARDED),
    ]
    assert "legacy portal answered 500" in attempts[0].error
    assert len(legacy_portal.received) == 2


@pytest.mark.parametrize("status", [301, 302, 303])
def test_a_redirect_is_a_failure_not_a_delivery(
    legacy_portal: LegacyPortal, applied: Applied, status: int
) -> None:
    """Following a redirect would turn the POST into a GET whose 200 says nothing about the
    event: it would be marked forwarded and never reach the portal."""
    legacy_portal.answers = [status]
    event_pk = store(event_payload("test.apply", account="acct_legacy"))

    assert event_process(event_pk=event_pk) == Status.RETRYING

    assert legacy_portal.followed == []
    attempt = WebhookAttempt.objects.get(event_id=event_pk)
    assert (attempt.action, attempt.outcome) == ("forward", Outcome.FAILED)
    assert f"legacy portal answered {status}" in attempt.error
    assert event_process(event_pk=event_pk) == Status.FORWARDED
    assert len(legacy_portal.received) == 2


def test_unreachable_portal_is_a_failure(settings: Any) -> None:
    settings.LEGACY_WEBHOOK_URL = "http://127.0.0.1:1/stripe/webhooks"
    settings.LEGACY_WEBHOOK_SECRET = LEGACY_SECRET

    with pytest.raises(ForwardFailed, match="unreachable"):
        event_forward(payload="{}")


def test_only_http_urls_are_used(settings: Any) -> None:
    settings.LEGACY_WEBHOOK_URL = "file:///etc/passwd"

    with pytest.raises(ForwardFailed, match="http"):
        event_forward(payload="{}")


def test_nothing_is_forwarded_without_a_url(settings: Any) -> None:
    settings.LEGACY_WEBHOOK_URL = ""
    settings.LEGACY_FORWARD_ACCOUNTS = ["acct_legacy"]

    assert legacy_owns(account="acct_legacy", data_object={}) is False
