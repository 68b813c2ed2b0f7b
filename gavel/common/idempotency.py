"""``Idempotency-Key`` on unsafe API requests, honoured the way Stripe honours it.

* same key, same request: the stored response is replayed (``Idempotent-Replayed: true``);
* same key, different request: 422 ``idempotency_key_reused``;
* same key while the first request is still running: 409 ``idempotency_key_in_flight``;
* keys are scoped per user (anonymous callers share one scope) and kept 24 hours;
* a 5xx answer is not stored, so the client's retry runs again.

The key row is inserted in its own transaction before the view runs; the unique constraint on
(scope, key) decides which of two concurrent requests goes first.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from gavel.common.errors import ServiceError
from gavel.common.models import IdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class IdempotencyReplay(Exception):
    """Raised to short-circuit a request with the stored response of its first run."""

    def __init__(self, record: IdempotencyKey) -> None:
        super().__init__(record.key)
        self.record = record


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


def _scope_for(request: Request) -> str:
    user = request.user
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return "anonymous"


def idempotency_begin(*, request: Request, body: bytes) -> IdempotencyKey | None:
    """Claim the request's key, or raise: replay, 409 in flight, 422 reused, 400 malformed."""
    if request.method not in UNSAFE_METHODS:
        return None
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ServiceError(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.", code="idempotency_key_invalid"
        )
    scope = _scope_for(request)
    fingerprint = request_fingerprint(method=request.method or "", path=request.path, body=body)
    expired_before = timezone.now() - settings.IDEMPOTENCY_KEY_TTL
    with transaction.atomic():
        IdempotencyKey.objects.filter(scope=scope, key=key, created_at__lt=expired_before).delete()
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(
                scope=scope, key=key, request_fingerprint=fingerprint
            )
    except IntegrityError:
        pass
    existing = IdempotencyKey.objects.filter(scope=scope, key=key).first()
    if existing is None:
        # The other request failed with a 5xx and released the key; the client may retry.
        raise ServiceError(
            "A request with this Idempotency-Key just failed; retry it.",
            code="idempotency_key_in_flight",
            status_code=409,
        )
    if existing.request_fingerprint != fingerprint:
        raise ServiceError(
            "This Idempotency-Key was already used with a different request.",
            code="idempotency_key_reused",
            status_code=422,
        )
    if existing.state == IdempotencyKey.State.IN_FLIGHT:
        raise ServiceError(
            "A request with this Idempotency-Key is still being processed.",
            code="idempotency_key_in_flight",
            status_code=409,
        )
    raise IdempotencyReplay(existing)


def idempotency_finish(*, record: IdempotencyKey, response: Response) -> None:
    """Store the response for replay, or release the key after a server error."""
    if response.status_code >= 500:
        IdempotencyKey.objects.filter(pk=record.pk).delete()
        return
    body: Any = response.data
    IdempotencyKey.objects.filter(pk=record.pk).update(
        state=IdempotencyKey.State.COMPLETED,
        response_status=response.status_code,
        response_body=body,
        completed_at=timezone.now(),
    )


def idempotency_replay_response(record: IdempotencyKey) -> Response:
    response = Response(record.response_body, status=record.response_status)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotency_keys_purge() -> int:
    """Delete keys past their time to live."""
    deleted, _ = IdempotencyKey.objects.filter(
        created_at__lt=timezone.now() - settings.IDEMPOTENCY_KEY_TTL
    ).delete()
    return deleted
