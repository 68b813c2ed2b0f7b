"""What the scrubber must catch beyond card numbers, Stripe keys and bearer tokens: client
secrets, other Authorization schemes, every password field and email addresses."""

from __future__ import annotations

import io
import logging
from typing import cast

from django.utils.module_loading import import_string

from gavel.observability.logging import ScrubFilter
from gavel.observability.scrub import REDACTED, scrub_text, scrub_value
from gavel.observability.sentry import sentry_before_send

PAYMENT_INTENT_SECRET = "pi_3QabcDEF123_secret_Zyx987wvu654"
SETUP_INTENT_SECRET = "seti_1QabcDEF123_secret_Qrs456tuv"
ACCOUNT_SESSION_SECRET = "accs_secret__RkQ3bW9ja1NlY3JldDEyMzQ1Njc4OTA"


def test_client_secrets_are_scrubbed_from_text() -> None:
    text = (
        f"confirm with {PAYMENT_INTENT_SECRET}, setup {SETUP_INTENT_SECRET}, "
        f"session {ACCOUNT_SESSION_SECRET}; intent pi_3QabcDEF123 stays"
    )
    scrubbed = scrub_text(text)
    assert "Zyx987wvu654" not in scrubbed
    assert "Qrs456tuv" not in scrubbed
    assert "RkQ3bW9ja1NlY3JldDEyMzQ1Njc4OTA" not in scrubbed
    assert "intent pi_3QabcDEF123 stays" in scrubbed  # an id alone is not a secret


def test_authorization_values_of_any_scheme_are_scrubbed() -> None:
    scrubbed = scrub_text(
        "Authorization: Basic dXNlcjpodW50ZXIy and authorization=Token 9f8e7d6c5b4a"
    )
    assert "dXNlcjpodW50ZXIy" not in scrubbed
    assert "9f8e7d6c5b4a" not in scrubbed
    # ASGI and WSGI carry headers as (name, value) pairs, not as a mapping.
    pairs = scrub_value({"headers": [("Authorization", "Basic dXNlcjpodW50ZXIy"), ("Host", "x")]})
    assert pairs == {"headers": [["Authorization", REDACTED], ["Host", "x"]]}
    assert scrub_value({"Proxy-Authorization": "Basic abc"}) == {"Proxy-Authorization": REDACTED}


def test_every_password_field_loses_its_value() -> None:
    # The password reset confirmation posts new_password; registration forms use password1/2.
    event = {
        "request": {
            "data": {
                "uid": "MTA",
                "new_password": "correct horse battery",
                "old_password": "hunter2",
                "password1": "p1",
                "password2": "p2",
                "LEGACY_WEBHOOK_SECRET": "legacy",
            }
        }
    }
    data = sentry_before_send(event, {})["request"]["data"]
    assert data == {
        "uid": "MTA",
        "new_password": REDACTED,
        "old_password": REDACTED,
        "password1": REDACTED,
        "password2": REDACTED,
        "LEGACY_WEBHOOK_SECRET": REDACTED,
    }


def test_email_addresses_are_scrubbed_from_logs_and_error_reports() -> None:
    assert scrub_text("reset sent to Bea.Buyer+a@example.co.uk today") == (
        "reset sent to [email redacted] today"
    )
    event = {"request": {"data": {"email": "bea@example.com", "note": "mail bea@example.com"}}}
    data = sentry_before_send(event, {})["request"]["data"]
    assert data == {"email": "[email redacted]", "note": "mail [email redacted]"}

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s %(detail)s"))
    handler.addFilter(ScrubFilter())
    logger = logging.getLogger("gavel.test.scrub.email")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.disabled = False
    try:
        logger.info("signed in %s", "bea@example.com", extra={"detail": "for bea@example.com"})
    finally:
        logger.removeHandler(handler)
    assert "bea@example.com" not in stream.getvalue()
    assert stream.getvalue().count("[email redacted]") == 2


class _Collecting(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_logged_exceptions_are_scrubbed_too() -> None:
    """logger.exception: the traceback carries the exception's message, which the JSON
    formatter writes as it is unless it is scrubbed; the record keeps its exception for any
    other handler."""
    from django.conf import settings

    formatters = cast(dict[str, dict[str, str]], settings.LOGGING["formatters"])
    config = formatters["json"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(import_string(config["()"])(config["fmt"]))
    handler.addFilter(ScrubFilter())
    logger = logging.getLogger("gavel.test.scrub.exception")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.disabled = False
    other = _Collecting()
    logger.addHandler(other)
    try:
        try:
            raise ValueError(
                f"Stripe said no to sk_live_abcDEF123 for bea@example.com: {PAYMENT_INTENT_SECRET}"
            )
        except ValueError:
            logger.exception("charge failed", stack_info=True)
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(other)
    assert other.records[0].exc_info is not None
    output = stream.getvalue()
    assert "ValueError" in output  # the traceback is kept ...
    for secret in ("sk_live_abcDEF123", "bea@example.com", "Zyx987wvu654"):
        assert secret not in output  # ... without what it must not carry
