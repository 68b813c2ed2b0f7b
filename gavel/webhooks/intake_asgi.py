"""The intake application: the webhook paths answered on an event loop, in front of Django.

``/webhooks/stripe/``, ``/webhooks/stripe/connect/`` and ``/webhooks/stripe/thin/`` are answered
here without Django's request, middleware and URL resolver: the body is read with its size
limit, the intake core (``intake.py``) checks it on the loop (tens of microseconds), and the
request awaits the process's group-commit writer (``intake_writer.py``) without holding a
thread. Every other path goes to Django's ASGI application. The request id (``X-Request-ID``,
taken when well formed, else made, and echoed) and the HTTP metrics are kept as Django's
middleware keeps them. Served by uvicorn (``gavel/asgi.py``, ``scripts/serve.sh``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.conf import settings

from gavel.common.context import request_id_new, request_id_var
from gavel.observability.metrics import HTTP_LATENCY, HTTP_REQUESTS
from gavel.observability.middleware import _ACCEPTABLE_REQUEST_ID
from gavel.webhooks.intake import (
    ACCEPTED,
    ENDPOINTS_BY_PATH,
    Endpoint,
    Rejected,
    body_limit_bytes,
    body_too_large,
    declared_length_check,
    delivery_read,
    error_json,
    rejection_record,
)
from gavel.webhooks.intake_writer import IntakeUnavailable, intake_writer, intake_writer_close

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WAIT_MARGIN_SECONDS = 5


def request_id_choose(incoming: bytes | None) -> str:
    """The caller's well-formed X-Request-ID, or a new one."""
    text = incoming.decode("latin-1") if incoming else ""
    return text if _ACCEPTABLE_REQUEST_ID.match(text) else request_id_new()


async def _body_read(receive: Receive) -> bytes:
    limit = body_limit_bytes()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Rejected(400, "malformed_body", "The client left before the body was sent.")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise body_too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _answer(
    scope: Scope, receive: Receive, endpoint: Endpoint, headers: dict[bytes, bytes]
) -> tuple[int, bytes]:
    method: str = scope["method"]
    if method != "POST":
        return 405, error_json(405, "method_not_allowed", f'Method "{method}" not allowed.')
    declared = headers.get(b"content-length")
    declared_text = declared.decode("latin-1") if declared is not None else None
    try:
        if declared_text is not None:
            declared_length_check(declared_text)
        body = await _body_read(receive)
        signature = headers.get(b"stripe-signature")
        row = delivery_read(
            endpoint=endpoint,
            body=body,
            signature=signature.decode("latin-1") if signature is not None else None,
        )
    except Rejected as rejection:
        client = scope.get("client")
        rejection_record(
            endpoint=endpoint,
            rejection=rejection,
            content_length=declared_text,
            remote_addr=client[0] if client else None,
        )
        return rejection.status_code, error_json(
            rejection.status_code, rejection.reason, rejection.message
        )
    try:
        # The writer's statement timeout normally answers first (its batch rolled back); this
        # bound covers a writer that cannot even connect.
        async with asyncio.timeout(
            settings.WEBHOOK_INTAKE_WRITE_TIMEOUT_SECONDS + WAIT_MARGIN_SECONDS
        ):
            await intake_writer().store(row)
    except (IntakeUnavailable, TimeoutError):
        return 503, error_json(
            503, "intake_unavailable", "The event could not be stored; deliver it again later."
        )
    return 200, ACCEPTED


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await intake_writer_close()
            await send({"type": "lifespan.shutdown.complete"})
            return


def intake_asgi(django_application: ASGIApp) -> ASGIApp:
    """``django_application`` with the webhook paths answered by the lean intake."""

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        endpoint = ENDPOINTS_BY_PATH.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None:
            await django_application(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        request_id = request_id_choose(headers.get(b"x-request-id"))
        token = request_id_var.set(request_id)
        try:
            status, body = await _answer(scope, receive, endpoint, headers)
        finally:
            request_id_var.reset(token)
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
        ]
        if status == 405:
            response_headers.append((b"allow", b"POST"))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})
        route = endpoint.path.lstrip("/")
        HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()
        HTTP_LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)

    return application
