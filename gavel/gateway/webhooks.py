"""Webhook signature verification with Stripe's own algorithm (``WebhookSignature``)."""

from __future__ import annotations

import stripe

DEFAULT_TOLERANCE_SECONDS = 300


class SignatureInvalid(Exception):
    """The Stripe-Signature header is missing, malformed, stale or matches no secret."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def signature_verify(
    *,
    payload: bytes,
    header: str | None,
    secrets: list[str],
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> str:
    """Verify ``payload`` against each secret in turn; returns the secret that matched."""
    if not header:
        raise SignatureInvalid("missing_signature")
    if not secrets:
        raise SignatureInvalid("no_secret_configured")
    text = payload.decode("utf-8", errors="replace")
    reason = "bad_signature"
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance_seconds)
        except stripe.SignatureVerificationError as error:
            message = str(error)
            if "tolerance" in message:
                reason = "stale_timestamp"
            elif "Unable to extract" in message:
                reason = "malformed_signature"
            continue
        return secret
    raise SignatureInvalid(reason)


def signature_header(*, payload: bytes, secret: str, timestamp: int) -> str:
    """The header Stripe would send for ``payload``; used to re-sign forwarded events."""
    signed = f"{timestamp}.{payload.decode('utf-8')}"
    signature = stripe.WebhookSignature._compute_signature(signed, secret)
    return f"t={timestamp},v1={signature}"
