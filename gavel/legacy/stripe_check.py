"""The optional Stripe cross-check of verification: does Stripe agree with what was imported?

For a deterministic sample of loaded (not quarantined) payments with a valid PaymentIntent id,
the PaymentIntent is read through the gateway (``payment_intent_retrieve``; nothing else of
Stripe is touched) and compared with the legacy facts: the status the final transaction state
implies, the amount, the currency, and for a captured payment the amount received.
"""

# SQL here is built from identifiers in this code, never from input; values are parameters.
# ruff: noqa: S608
from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from gavel.gateway.errors import GatewayFinalError, GatewayRetryableError
from gavel.gateway.payment_intents import payment_intent_retrieve
from gavel.legacy.reader import STRIPE_ID_PATTERNS
from gavel.legacy.states import CAPTURED_STATES, LegacyState

S = LegacyState
# Final legacy state -> the PaymentIntent statuses Stripe may show for it.
EXPECTED_INTENT_STATUSES: dict[str, frozenset[str]] = {
    **{state.value: frozenset({"succeeded"}) for state in CAPTURED_STATES},
    S.PREAUTHORIZED.value: frozenset({"requires_capture"}),
    S.PENDING_EXT.value: frozenset({"requires_capture"}),
    S.REJECTED.value: frozenset({"canceled"}),
    S.ERRORED.value: frozenset({"canceled"}),
    S.PAYMENT_INTENT_ACTION_EXPIRED.value: frozenset({"canceled", "requires_action"}),
    S.PAYMENT_INTENT_REQUIRES_ACTION.value: frozenset({"requires_action"}),
    S.PAYMENT_INTENT_FAILED.value: frozenset({"requires_payment_method", "canceled"}),
    S.INITIATED.value: frozenset(
        {"requires_payment_method", "requires_confirmation", "requires_action", "canceled"}
    ),
}
_INTENT_PATTERN = STRIPE_ID_PATTERNS["stripe_payment_intent_id"].pattern
SAMPLE_SQL = f"""
SELECT pay.legacy_id, pay.stripe_payment_intent_id, pay.sum_cents, upper(pay.currency),
       (SELECT t.to_state FROM legacy_legacyordertransition t
        WHERE t.transaction_legacy_id = pay.transaction_legacy_id
        ORDER BY t.sort_key DESC, t.legacy_id DESC LIMIT 1)
FROM legacy_legacypayment pay
WHERE NOT pay.is_quarantined AND pay.stripe_payment_intent_id ~ '{_INTENT_PATTERN}'
ORDER BY md5(pay.legacy_id::text)
LIMIT %s
"""


@dataclass(frozen=True, slots=True)
class IntentCheck:
    legacy_id: int
    payment_intent_id: str
    problem: str  # "" when Stripe agrees


def _check(legacy_id: int, intent_id: str, sum_cents: int, currency: str, state: str) -> str:
    try:
        intent = payment_intent_retrieve(payment_intent_id=intent_id)
    except GatewayFinalError:
        return "missing in Stripe"
    problems = []
    expected = EXPECTED_INTENT_STATUSES.get(state, frozenset())
    if intent.status not in expected:
        problems.append(f"status {intent.status}, legacy state {state}")
    if intent.amount_minor != sum_cents:
        problems.append(f"amount {intent.amount_minor} != sum_cents {sum_cents}")
    if intent.currency != currency:
        problems.append(f"currency {intent.currency} != {currency}")
    if state in CAPTURED_STATES and intent.amount_received_minor != sum_cents:
        problems.append(f"received {intent.amount_received_minor} != sum_cents {sum_cents}")
    return "; ".join(problems)


def stripe_cross_check(*, sample: int) -> tuple[list[IntentCheck], int]:
    """Check up to ``sample`` payments; returns the checks and how many Stripe could not
    answer (retryable errors: not a difference, but not a check either)."""
    with connection.cursor() as cursor:
        cursor.execute(SAMPLE_SQL, [sample])
        rows = cursor.fetchall()
    checks: list[IntentCheck] = []
    unanswered = 0
    for legacy_id, intent_id, sum_cents, currency, state in rows:
        try:
            problem = _check(legacy_id, intent_id, sum_cents, currency, state or "")
        except GatewayRetryableError:
            unanswered += 1
            continue
        checks.append(IntentCheck(int(legacy_id), str(intent_id), problem))
    return checks, unanswered
