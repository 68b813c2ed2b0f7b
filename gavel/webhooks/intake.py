"""The webhook intake core, framework-independent: what a delivery must be to be stored.

Shared by the Django views (``views.py``) and the intake process's application
(``intake_asgi.py``): size limit, signature against each of the endpoint's secrets, JSON,
envelope, livemode rule, and the rejection record (counted, logged without the body). Storing
is the caller's: the views store one event in their request's connection, the intake
application hands it to the process's group-commit writer (``intake_writer.py``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from django.conf import settings

from gavel.common.errors import error_body
from gavel.gateway.client import livemode_expected
from gavel.gateway.webhooks import SignatureInvalid, signature_verify
from gavel.webhooks import metrics
from gavel.webhooks.envelope import NotAnEvent, envelope_read
from gavel.webhooks.models import WebhookEvent
from gavel.webhooks.services.ingest import EventRow

logger = logging.getLogger(__name__)

ACCEPTED = b'{"received":true}'
TEST_EVENT_ON_LIVE_ENDPOINT = "test-mode event on a live-mode Connect endpoint"


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    path: str
    secrets_setting: str
    source: WebhookEvent.Source
    receives_connected_accounts: bool


PLATFORM = Endpoint(
    "platform", "/webhooks/stripe/", "STRIPE_WEBHOOK_SECRETS", WebhookEvent.Source.PLATFORM, False
)
CONNECT = Endpoint(
    "connect",
    "/webhooks/stripe/connect/",
    "STRIPE_CONNECT_WEBHOOK_SECRETS",
    WebhookEvent.Source.CONNECT,
    True,
)
THIN = Endpoint(
    "thin", "/webhooks/stripe/thin/", "STRIPE_THIN_WEBHOOK_SECRETS", WebhookEvent.Source.THIN, True
)
ENDPOINTS_BY_PATH = {endpoint.path: endpoint for endpoint in (PLATFORM, CONNECT, THIN)}


class Rejected(Exception):
    """A delivery refused before anything is stored (a 4xx)."""

    def __init__(self, status_code: int, reason: str, message: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason
        self.message = message


def body_limit_bytes() -> int:
    limit: int = settings.WEBHOOK_MAX_BODY_BYTES
    return limit


def body_too_large() -> Rejected:
    return Rejected(413, "body_too_large", f"The body exceeds {body_limit_bytes()} bytes.")


def declared_length_check(declared: str | None) -> int:
    """The declared Content-Length, refused (413) past the limit before anything is read."""
    text = declared or "0"
    if not text.isdigit() or int(text) > body_limit_bytes():
        raise body_too_large()
    return int(text)


def delivery_read(*, endpoint: Endpoint, body: bytes, signature: str | None) -> EventRow:
    """The row to store for a delivery, or ``Rejected``: signature, JSON, envelope, livemode."""
    if len(body) > body_limit_bytes():
        raise body_too_large()
    try:
        signature_verify(
            payload=body,
            header=signature,
            secrets=getattr(settings, endpoint.secrets_setting),
            tolerance_seconds=settings.WEBHOOK_SIGNATURE_TOLERANCE_SECONDS,
        )
    except SignatureInvalid as error:
        raise Rejected(400, error.reason, "The Stripe-Signature header is not valid.") from error
    try:
        text = body.decode("utf-8")
        payload = json.loads(text)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise Rejected(400, "malformed_json", "The body is not JSON.") from error
    try:
        envelope = envelope_read(payload)
    except NotAnEvent as error:
        raise Rejected(400, "not_an_event", f"The body is not a Stripe event ({error}).") from error
    ignored_reason = ""
    expected = livemode_expected()
    if envelope.livemode != expected:
        # A live Connect endpoint also receives connected accounts' test-mode events: kept for
        # audit, never applied to live money. Anything else is misrouted.
        if not (endpoint.receives_connected_accounts and expected and envelope.account):
            raise Rejected(400, "livemode_mismatch", "The event's livemode is not ours.")
        ignored_reason = TEST_EVENT_ON_LIVE_ENDPOINT
    return EventRow(
        envelope=envelope,
        body=text,
        source=WebhookEvent.Source.THIN if envelope.thin else endpoint.source,
        ignored_reason=ignored_reason,
        endpoint=endpoint.name,
    )


def rejection_record(
    *, endpoint: Endpoint, rejection: Rejected, content_length: str | None, remote_addr: str | None
) -> None:
    """Count and log a refusal: the reason, the length and the address, never the body."""
    metrics.REJECTIONS.labels(endpoint.name, rejection.reason).inc()
    logger.warning(
        "webhook rejected",
        extra={
            "endpoint": endpoint.name,
            "reason": rejection.reason,
            "content_length": content_length,
            "remote_addr": remote_addr,
        },
    )


def error_json(status_code: int, code: str, message: str) -> bytes:
    """Gavel's one error format, as bytes (the request id comes from the context)."""
    error_type = "invalid_request_error" if status_code < 500 else "api_error"
    body = error_body(error_type=error_type, code=code, message=message)
    return json.dumps(body, separators=(",", ":")).encode()
