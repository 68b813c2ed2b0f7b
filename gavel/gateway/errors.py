"""Our own errors for what Stripe answered, so no caller ever handles an SDK exception."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import stripe


class GatewayError(Exception):
    """Base of every gateway error. ``request_id`` is Stripe's, for support."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.request_id = request_id


class GatewayRetryableError(GatewayError):
    """Try again later with the same idempotency key: network failure, 429, 5xx, lock conflict.

    ``outcome_unknown`` is True when Stripe may have applied the request (a timeout or a dropped
    connection after sending): the caller must treat the operation as unknown, not failed.
    """

    def __init__(
        self,
        message: str,
        *,
        outcome_unknown: bool = False,
        code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status, request_id=request_id)
        self.outcome_unknown = outcome_unknown


class GatewayFinalError(GatewayError):
    """Stripe refused the request for good (invalid request, auth, permission, idempotency)."""


class GatewayCardDeclined(GatewayFinalError):
    """The card was declined or needs the customer (``authentication_required``)."""

    def __init__(
        self,
        message: str,
        *,
        decline_code: str | None = None,
        payment_intent_id: str | None = None,
        setup_intent_id: str | None = None,
        code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status, request_id=request_id)
        self.decline_code = decline_code
        self.payment_intent_id = payment_intent_id
        self.setup_intent_id = setup_intent_id

    @property
    def requires_authentication(self) -> bool:
        return self.code == "authentication_required" or (
            self.decline_code == "authentication_required"
        )


def _error_detail(error: stripe.StripeError) -> dict[str, object]:
    body = error.json_body if isinstance(error.json_body, dict) else {}
    detail = body.get("error")
    return detail if isinstance(detail, dict) else {}


def _decline_code(error: stripe.StripeError) -> str | None:
    code = getattr(error, "decline_code", None) or _error_detail(error).get("decline_code")
    return code if isinstance(code, str) else None


def _intent_id(error: stripe.StripeError, field: str) -> str | None:
    intent = _error_detail(error).get(field)
    if isinstance(intent, dict):
        value = intent.get("id")
        return value if isinstance(value, str) else None
    return None


def translate(error: stripe.StripeError) -> GatewayError:
    """Map an SDK error to ours."""
    code, http_status, request_id = error.code, error.http_status, error.request_id
    message = error.user_message or str(error) or type(error).__name__
    if isinstance(error, stripe.CardError):
        return GatewayCardDeclined(
            message,
            decline_code=_decline_code(error),
            payment_intent_id=_intent_id(error, "payment_intent"),
            setup_intent_id=_intent_id(error, "setup_intent"),
            code=code,
            http_status=http_status,
            request_id=request_id,
        )
    if isinstance(error, stripe.APIConnectionError):
        return GatewayRetryableError(
            message, outcome_unknown=True, code=code, http_status=http_status, request_id=request_id
        )
    if isinstance(error, stripe.RateLimitError):
        return GatewayRetryableError(
            message, code=code, http_status=http_status, request_id=request_id
        )
    if isinstance(error, stripe.IdempotencyError):
        return GatewayFinalError(message, code=code, http_status=http_status, request_id=request_id)
    if isinstance(error, (stripe.AuthenticationError, stripe.PermissionError)):
        return GatewayFinalError(message, code=code, http_status=http_status, request_id=request_id)
    if isinstance(error, stripe.InvalidRequestError):
        if error.http_status == 409:
            return GatewayRetryableError(
                message, code=code, http_status=http_status, request_id=request_id
            )
        return GatewayFinalError(message, code=code, http_status=http_status, request_id=request_id)
    status = http_status or 0
    if status >= 500 or status in (0, 409):
        # A 5xx from Stripe may or may not have been applied; replaying the same key settles it.
        return GatewayRetryableError(
            message,
            outcome_unknown=status >= 500,
            code=code,
            http_status=http_status,
            request_id=request_id,
        )
    return GatewayFinalError(message, code=code, http_status=http_status, request_id=request_id)


@contextmanager
def stripe_errors_translated() -> Iterator[None]:
    try:
        yield
    except stripe.StripeError as error:
        raise translate(error) from error
