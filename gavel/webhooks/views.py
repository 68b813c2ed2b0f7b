"""Stripe webhook intake as Django views: verify, store, enqueue, answer.

The checks are the intake core's (``intake.py``), shared with the intake process that serves
these paths in production (``intake_asgi.py`` under uvicorn, docs/webhooks.md). Here the event
is stored in the request's own connection (autocommit: the INSERT is the commit); these views
answer when the paths reach the API's server (Django's test client, ``runserver``, a proxy
without the intake route), while the intake process group-commits.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from gavel.webhooks.intake import (
    ACCEPTED,
    CONNECT,
    PLATFORM,
    THIN,
    Endpoint,
    Rejected,
    declared_length_check,
    delivery_read,
    error_json,
    rejection_record,
)
from gavel.webhooks.services.ingest import event_ingest


def _intake(request: HttpRequest, endpoint: Endpoint) -> HttpResponse:
    if request.method != "POST":
        response = HttpResponse(
            error_json(405, "method_not_allowed", f'Method "{request.method}" not allowed.'),
            status=405,
            content_type="application/json",
        )
        response["Allow"] = "POST"
        return response
    try:
        declared_length_check(request.META.get("CONTENT_LENGTH"))
        row = delivery_read(
            endpoint=endpoint,
            body=request.read(),
            signature=request.headers.get("Stripe-Signature"),
        )
    except Rejected as rejection:
        rejection_record(
            endpoint=endpoint,
            rejection=rejection,
            content_length=request.META.get("CONTENT_LENGTH"),
            remote_addr=request.META.get("REMOTE_ADDR"),
        )
        return HttpResponse(
            error_json(rejection.status_code, rejection.reason, rejection.message),
            status=rejection.status_code,
            content_type="application/json",
        )
    event_ingest(
        envelope=row.envelope,
        body=row.body,
        source=row.source,
        ignored_reason=row.ignored_reason,
        endpoint=row.endpoint,
    )
    return HttpResponse(ACCEPTED, content_type="application/json")


@csrf_exempt
def stripe_platform_webhook(request: HttpRequest) -> HttpResponse:
    return _intake(request, PLATFORM)


@csrf_exempt
def stripe_connect_webhook(request: HttpRequest) -> HttpResponse:
    return _intake(request, CONNECT)


@csrf_exempt
def stripe_thin_webhook(request: HttpRequest) -> HttpResponse:
    return _intake(request, THIN)
