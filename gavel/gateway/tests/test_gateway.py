from __future__ import annotations

from typing import Any

import pytest
import stripe

from gavel.gateway.errors import (
    GatewayCardDeclined,
    GatewayFinalError,
    GatewayRetryableError,
    stripe_errors_translated,
    translate,
)
from gavel.gateway.keys import idempotency_key
from gavel.gateway.webhooks import SignatureInvalid, signature_header, signature_verify


def test_idempotency_keys_come_from_our_operation_ids() -> None:
    assert idempotency_key("payment_intent_create", 42) == "gavel:payment_intent_create:42"
    assert idempotency_key("payment_intent_create", 42, attempt=2) == (
        "gavel:payment_intent_create:42:2"
    )
    with pytest.raises(ValueError, match="Unsafe"):
        idempotency_key("bad op", "x")


def _card_error(code: str, decline_code: str | None) -> stripe.CardError:
    body = {
        "error": {
            "type": "card_error",
            "code": code,
            "decline_code": decline_code,
            "message": "Your card was declined.",
            "payment_intent": {"id": "pi_123", "object": "payment_intent"},
        }
    }
    return stripe.CardError("Your card was declined.", None, code, http_status=402, json_body=body)


def test_card_errors_become_declines_with_the_intent() -> None:
    error = translate(_card_error("authentication_required", "authentication_required"))
    assert isinstance(error, GatewayCardDeclined)
    assert error.requires_authentication
    assert error.payment_intent_id == "pi_123"
    plain = translate(_card_error("card_declined", "insufficient_funds"))
    assert isinstance(plain, GatewayCardDeclined)
    assert not plain.requires_authentication
    assert plain.decline_code == "insufficient_funds"


@pytest.mark.parametrize(
    ("error", "expected", "unknown"),
    [
        (stripe.APIConnectionError("timed out"), GatewayRetryableError, True),
        (stripe.RateLimitError("slow down", http_status=429), GatewayRetryableError, False),
        (stripe.APIError("boom", http_status=500), GatewayRetryableError, True),
        (stripe.InvalidRequestError("lock", None, http_status=409), GatewayRetryableError, False),
        (stripe.InvalidRequestError("bad", "amount", http_status=400), GatewayFinalError, None),
        (stripe.AuthenticationError("no key", http_status=401), GatewayFinalError, None),
        (stripe.IdempotencyError("reused", http_status=400), GatewayFinalError, None),
        (stripe.PermissionError("nope", http_status=403), GatewayFinalError, None),
    ],
)
def test_sdk_errors_map_to_retryable_or_final(
    error: stripe.StripeError, expected: type[Exception], unknown: bool | None
) -> None:
    translated = translate(error)
    assert type(translated) is expected
    if unknown is not None:
        assert isinstance(translated, GatewayRetryableError)
        assert translated.outcome_unknown is unknown


def test_translation_context_manager_raises_ours() -> None:
    with pytest.raises(GatewayRetryableError), stripe_errors_translated():
        raise stripe.APIConnectionError("reset")


def test_signature_verify_accepts_each_rolled_secret_and_refuses_the_rest() -> None:
    import time

    payload = b'{"id": "evt_1", "object": "event"}'
    now = int(time.time())
    header = signature_header(payload=payload, secret="whsec_new", timestamp=now)
    assert signature_verify(payload=payload, header=header, secrets=["whsec_old", "whsec_new"]) == (
        "whsec_new"
    )
    cases: list[tuple[dict[str, Any], str]] = [
        ({"header": header, "secrets": ["whsec_other"]}, "bad_signature"),
        ({"header": None, "secrets": ["whsec_new"]}, "missing_signature"),
        ({"header": "garbage", "secrets": ["whsec_new"]}, "malformed_signature"),
        ({"header": header, "secrets": []}, "no_secret_configured"),
        (
            {
                "header": signature_header(
                    payload=payload, secret="whsec_new", timestamp=now - 301
                ),
                "secrets": ["whsec_new"],
            },
            "stale_timestamp",
        ),
    ]
    for kwargs, reason in cases:
        with pytest.raises(SignatureInvalid) as raised:
            signature_verify(payload=payload, **kwargs)
        assert raised.value.reason == reason
