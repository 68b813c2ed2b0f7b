"""The Stripe cross-check reads PaymentIntents through the gateway (the in-process sandbox)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gavel.legacy.models import LegacyOrderTransition, LegacyPayment
from gavel.legacy.verify import stripe_rows

pytestmark = pytest.mark.django_db
AT = datetime(2026, 1, 1, tzinfo=UTC)


def staged_payment(legacy_id: int, intent_id: str, sum_cents: int, final_state: str) -> None:
    LegacyOrderTransition.objects.create(
        legacy_id=legacy_id,
        transaction_legacy_id=legacy_id,
        to_state=final_state,
        sort_key=10,
        staged_run_id=1,
        legacy_created_at=AT,
        legacy_updated_at=AT,
    )
    LegacyPayment.objects.create(
        legacy_id=legacy_id,
        transaction_legacy_id=legacy_id,
        status="paid",
        sum_cents=sum_cents,
        currency="eur",
        stripe_payment_intent_id=intent_id,
        staged_run_id=1,
        legacy_created_at=AT,
        legacy_updated_at=AT,
    )


def intent(sandbox, amount: int, *, capture: bool) -> str:
    created = sandbox.client().v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "eur",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "capture_method": "manual",
        }
    )
    if capture:
        sandbox.client().v1.payment_intents.capture(created.id)
    return str(created.id)


def test_stripe_agrees_or_each_difference_is_listed(sandbox):
    staged_payment(1, intent(sandbox, 1250, capture=True), 1250, "confirmed")
    staged_payment(2, intent(sandbox, 900, capture=False), 900, "preauthorized")
    staged_payment(3, intent(sandbox, 700, capture=False), 700, "paid")  # never captured
    staged_payment(4, intent(sandbox, 500, capture=True), 555, "paid")  # amount differs
    staged_payment(5, "pi_000000000000000000missing", 100, "paid")
    LegacyPayment.objects.filter(legacy_id=5).update(is_quarantined=False)

    rows = stripe_rows(sample=10)

    summary = rows[0]
    assert (summary.legacy, summary.gavel, summary.difference) == (5, 2, 3)
    assert rows[1].difference == 0
    problems = sorted(
        row.key.split(" ", 2)[0] + " " + row.key.split(": ", 1)[1] for row in rows[2:]
    )
    assert problems == [
        "3 status requires_capture, legacy state paid; received 0 != sum_cents 700",
        "4 amount 500 != sum_cents 555; received 500 != sum_cents 555",
        "5 missing in Stripe",
    ]
