"""The configured ``StripeClient``: one per process, built from settings.

``STRIPE_API_BASE`` empty talks to Stripe; a URL (``http://127.0.0.1:12111``) talks to the
standalone sandbox; ``inprocess`` talks to a ``stripe_sandbox.Sandbox`` in this process, bound
with ``client_bind_sandbox`` (tests and the demo).
"""

from __future__ import annotations

import threading
from typing import Any

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_lock = threading.Lock()
_client: stripe.StripeClient | None = None
_inprocess_http_client: stripe.HTTPClient | None = None

INPROCESS = "inprocess"
INPROCESS_BASE = "http://stripe-sandbox.inprocess"


def client_bind_sandbox(http_client: stripe.HTTPClient | None) -> None:
    """Route the gateway to an in-process sandbox's HTTP client (None unbinds)."""
    global _client, _inprocess_http_client
    with _lock:
        _inprocess_http_client = http_client
        _client = None


def client_reset() -> None:
    """Forget the cached client, e.g. after settings change in a test."""
    global _client
    with _lock:
        _client = None


def _build() -> stripe.StripeClient:
    api_base = settings.STRIPE_API_BASE
    kwargs: dict[str, Any] = {
        "stripe_version": settings.STRIPE_API_VERSION,
        "max_network_retries": settings.STRIPE_MAX_NETWORK_RETRIES,
    }
    if api_base == INPROCESS:
        if _inprocess_http_client is None:
            raise ImproperlyConfigured(
                "STRIPE_API_BASE=inprocess needs a sandbox bound with client_bind_sandbox()"
            )
        kwargs["http_client"] = _inprocess_http_client
        kwargs["base_addresses"] = {"api": INPROCESS_BASE, "connect": INPROCESS_BASE}
    else:
        kwargs["http_client"] = stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS)
        if api_base:
            kwargs["base_addresses"] = {"api": api_base, "connect": api_base}
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, **kwargs)


def stripe_client() -> stripe.StripeClient:
    global _client
    with _lock:
        if _client is None:
            _client = _build()
        return _client


def livemode_expected() -> bool:
    """Whether the configured secret key is a live-mode key."""
    key: str = settings.STRIPE_SECRET_KEY
    return key.startswith(("sk_live_", "rk_live_"))


def account_options(account_id: str | None) -> stripe.RequestOptions:
    """Request options acting on ``account_id``'s connected account (the platform for None)."""
    return {"stripe_account": account_id} if account_id else {}
