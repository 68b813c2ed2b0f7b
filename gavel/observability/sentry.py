"""Sentry, switched on by SENTRY_DSN, with every event scrubbed before it leaves."""

from __future__ import annotations

from typing import Any

import sentry_sdk
from django.conf import settings
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration

from gavel.observability.scrub import scrub_value


def sentry_before_send(event: Any, hint: Any) -> Any:
    """Scrub request headers, bodies, cookies, breadcrumbs, extras and exception values."""
    scrubbed: Any = scrub_value(event)
    return scrubbed


def sentry_init() -> bool:
    if not settings.SENTRY_DSN:
        return False
    sentry_sdk.init(
        dsn=settings.SENTRY_DSN,
        environment=settings.SENTRY_ENVIRONMENT,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        before_send=sentry_before_send,
        before_send_transaction=sentry_before_send,
        traces_sample_rate=0.0,
    )
    return True
