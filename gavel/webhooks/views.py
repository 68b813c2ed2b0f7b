"""Stripe webhook intake: verify, store, enqueue, answer. Nothing else happens before the 200.

Plain Django views (no DRF: the raw bytes are what Stripe signed, and the hot path stays
short). Every refusal is a 4xx in Gavel's error format, counted and logged without the body.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from gavel.common.errors import json_error_response
from gavel.gateway.client import livemode_expected
from gavel.gateway.webhooks import SignatureInvalid, signature_verify
from gavel.webhooks import metrics
from gavel.webhooks.envelope import Envelope, NotAnEvent, envelope_read
from gavel.webhooks.models import WebhookEvent
from gavel.webhooks.services.ingest import event_ingest

logger = logging.getLogger(__name__)

ACCEPTED = b'{"received":true}'
TEST_EVENT_ON_LIVE_ENDPOINT = "test-mode event on a live-mode Connect endpoint"


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    secrets_setting: str
    source: WebhookEvent.Source
    receives_connected_accounts: bool


PLATFORM = Endpoint("platform", "STRIPE_WEBHOOK_SECRETS", WebhookEvent.Source.PLATFORM, False)
CONNECT = Endpoint("connect", "STRIPE_CONNECT_WEBHOOK_SECRETS", WebhookEvent.Source.CONNECT, True)
THIN = Endpoint("thin", "STRIPE_THIN_WEBHOOK_SECRETS", WebhookEvent.Source.THIN, True)


class Rejected(Exception):
    def __init__(self, status_code: int, reason: str, message: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason
        self.message = message


def _body_read(request: HttpRequest) -> bytes:
    limit: int = settings.WEBHOOK_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > limit:
        raise Rejected(413, "body_too_large", f"The body exceeds {limit} bytes.")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise Rejected(413, "body_too_large", f"The body exceeds {limit} bytes.")
    return body


def _envelope_verified(request: HttpRequest, endpoint: Endpoint, body: bytes) -> Envelope:
    try:
        signature_verify(
            payload=body,
            header=request.headers.get("Stripe-Signature"),
            secrets=getattr(settings, endpoint.secrets_setting),
            tolerance_seconds=settings.WEBHOOK_SIGNATURE_TOLERANCE_SECONDS,
        )
    except SignatureInvalid as error:
        raise Rejected(400, error.reason, "The Stripe-Signature header is not valid.") from error
    try:
        payload = json.loads(body)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise Rejected(400, "malformed_json", "The body is not JSON.") from error
    try:
        return envelope_read(payload)
    except NotAnEvent as error:
        raise Rejected(400, "not_an_event", f"The body is not a Stripe event ({error}).") from error


def _intake(request: HttpRequest, endpoint: Endpoint) -> HttpResponse:
    try:
        body = _body_read(request)
        envelope = _envelope_verified(request, endpoint, body)
        ignored_reason = ""
        expected = livemode_expected()
        if envelope.livemode != expected:
            # A live Connect endpoint also receives connected accounts' test-mode events:
            # kept for audit, never applied to live money. Anything else is misrouted.
            if not (endpoint.receives_connected_accounts and expected and envelope.account):
                raise Rejected(400, "livemode_mismatch", "The event's livemode is not ours.")
            ignored_reason = TEST_EVENT_ON_LIVE_ENDPOINT
    except Rejected as rejection:
        metrics.REJECTIONS.labels(endpoint.name, rejection.reason).inc()
        logger.warning(
            "webhook rejected",
            extra={
                "endpoint": endpoint.name,
                "reason": rejection.reason,
                "content_length": request.META.get("CONTENT_LENGTH"),
                "remote_addr": request.META.get("REMOTE_ADDR"),
            },
        )
        return json_error_response(rejection.status_code, rejection.reason, rejection.message)
    source = WebhookEvent.Source.THIN if envelope.thin else endpoint.source
    event_ingest(
        envelope=envelope,
        body=body.decode("utf-8"),
        source=source,
        ignored_reason=ignored_reason,
        endpoint=endpoint.name,
    )
    return HttpResponse(ACCEPTED, content_type="application/json")


@csrf_exempt
@require_POST
def stripe_platform_webhook(request: HttpRequest) -> HttpResponse:
    return _intake(request, PLATFORM)


@csrf_exempt
@require_POST
def stripe_connect_webhook(request: HttpRequest) -> HttpResponse:
    return _intake(request, CONNECT)


@csrf_exempt
@require_POST
def stripe_thin_webhook(request: HttpRequest) -> HttpResponse:
    return _intake(request, THIN)
