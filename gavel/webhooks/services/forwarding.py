"""Forwarding, during the migration, of events about objects the legacy Rails portal still owns.

The rule (settings): the event's connected account is in LEGACY_FORWARD_ACCOUNTS, or its
object's metadata holds one of the LEGACY_FORWARD_METADATA ``key=value`` pairs. The body goes
out byte for byte, re-signed with LEGACY_WEBHOOK_SECRET the way Stripe signs, so the portal's
existing Stripe verification accepts it. Any answer but 2xx (a redirect too: it is not
followed) is a failure, retried like a handler failure.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from gavel.gateway.webhooks import signature_header

USER_AGENT = "Gavel-Forwarder/1.0"


class ForwardFailed(Exception):
    """The legacy portal did not take the event (network error or a non-2xx answer)."""


class _RedirectRefused(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a delivery: following it would re-send the POST as a GET
    without the event, and its 2xx would mark the event forwarded though the portal never
    received it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_RedirectRefused)


def _metadata_rules() -> list[tuple[str, str]]:
    rules = []
    for item in settings.LEGACY_FORWARD_METADATA:
        key, separator, value = item.partition("=")
        if separator and key:
            rules.append((key.strip(), value.strip()))
    return rules


def legacy_owns(*, account: str | None, data_object: dict[str, Any]) -> bool:
    """Whether the event is about an object the legacy portal still owns."""
    if not settings.LEGACY_WEBHOOK_URL:
        return False
    if account and account in settings.LEGACY_FORWARD_ACCOUNTS:
        return True
    metadata = data_object.get("metadata")
    if not isinstance(metadata, dict):
        return False
    return any(metadata.get(key) == value for key, value in _metadata_rules())


def event_forward(*, payload: str) -> int:
    """POST the event to LEGACY_WEBHOOK_URL, signed with LEGACY_WEBHOOK_SECRET; returns the
    HTTP status (2xx) or raises ForwardFailed."""
    url: str = settings.LEGACY_WEBHOOK_URL
    if urlsplit(url).scheme not in ("http", "https"):
        raise ForwardFailed(f"LEGACY_WEBHOOK_URL must be http(s), got {url!r}")
    body = payload.encode("utf-8")
    header = signature_header(
        payload=body, secret=settings.LEGACY_WEBHOOK_SECRET, timestamp=int(time.time())
    )
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": header,
            "User-Agent": USER_AGENT,
        },
    )
    try:
        with _opener.open(request, timeout=settings.LEGACY_WEBHOOK_TIMEOUT_SECONDS) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        raise ForwardFailed(f"legacy portal answered {error.code}") from error
    except (urllib.error.URLError, OSError) as error:
        raise ForwardFailed(f"legacy portal unreachable: {error}") from error
    if not 200 <= status < 300:
        raise ForwardFailed(f"legacy portal answered {status}")
    return status
