"""Scrubbing for logs and error reports: no card number, secret or credential leaves Gavel.

Gavel never receives card data (Stripe's client SDKs tokenize it), but a mistaken client or a
pasted support message could still carry a number; anything that looks like one is masked.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"

# 13 to 19 digits, optionally separated by single spaces or dashes.
_CARD_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_SECRET_TOKENS = re.compile(
    r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9_]+|\bwhsec_[A-Za-z0-9_]+|\bBearer\s+[A-Za-z0-9._\-]+"
    # Client secrets: a PaymentIntent's or SetupIntent's, an account session's.
    r"|\b(?:pi|seti)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+|\baccs_secret_[A-Za-z0-9_]+",
)
# The value after "Authorization:" or "authorization=", whatever the scheme (Basic, Token...).
_AUTHORIZATION_VALUE = re.compile(
    r"(?i)(\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)(?:[A-Za-z]+\s+)?[^\s\"',;]+"
)
_EMAIL = re.compile(r"(?<![\w.+%-])[\w.+%-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
EMAIL_REDACTED = "[email redacted]"
SENSITIVE_KEYS = frozenset(
    {
        "authorization", "cookie", "set-cookie", "password", "secret", "secret_key",
        "api_key", "stripe_secret_key", "token", "access", "refresh", "card_number", "number",
        "cvc", "cvv", "stripe-signature", "client_secret", "x-api-key", "sessionid",
        "csrftoken", "http_authorization", "http_cookie", "http_stripe_signature",
    }
)  # fmt: skip
# A key holding any of these (new_password, LEGACY_WEBHOOK_SECRET, Proxy-Authorization) is
# sensitive too.
_SENSITIVE_KEY_PARTS = ("password", "passwd", "secret", "authorization")


def _sensitive_key(key: object) -> bool:
    if isinstance(key, bytes):
        key = key.decode("latin-1")
    if not isinstance(key, str):
        return False
    lowered = key.lower()
    return lowered in SENSITIVE_KEYS or any(part in lowered for part in _SENSITIVE_KEY_PARTS)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if 13 <= len(digits) <= 19 and _luhn_valid(digits):
        return "[card redacted]"
    return match.group(0)


def scrub_text(text: str) -> str:
    """Mask Luhn-valid card numbers, Stripe secret keys, webhook and client secrets,
    Authorization values of any scheme and email addresses."""
    text = _SECRET_TOKENS.sub(REDACTED, _CARD_CANDIDATE.sub(_mask_card, text))
    text = _AUTHORIZATION_VALUE.sub(lambda match: match.group(1) + REDACTED, text)
    return _EMAIL.sub(EMAIL_REDACTED, text)


def scrub_value(value: Any, *, depth: int = 0) -> Any:
    """Recursively scrub a JSON-like value; sensitive keys lose their values entirely."""
    if depth > 20:
        return REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {
            key: REDACTED if _sensitive_key(key) else scrub_value(item, depth=depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and _sensitive_key(value[0]):
            # A (name, value) header pair, as ASGI and WSGI carry them.
            return [value[0], REDACTED]
        return [scrub_value(item, depth=depth + 1) for item in value]
    return value
