from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest

from gavel.legacy.ledger_plan import PaymentFacts, payment_entries, seller_payable_code

AT = datetime(2024, 1, 1, tzinfo=UTC)


def facts(state: str, status: str = "paid", real_fee: int | None = 30) -> PaymentFacts:
    return PaymentFacts(
        legacy_id=9,
        final_state=state,
        status=status,
        currency="EUR",
        sum_cents=1100,
        commission_cents=100,
        buyer_commission_cents=50,
        real_fee_cents=real_fee,
        seller_account=seller_payable_code(stripe_seller_id="acct_1", person_legacy_id="p"),
        paid_at=AT,
        disputed_at=None,
        resolved_at=None,
        transfered_at=None,
        fallback_at=AT,
    )


def balances(entries):
    totals: dict[str, int] = defaultdict(int)
    for entry in entries:
        assert sum(line.amount_minor for line in entry.lines) == 0, entry.reference
        for line in entry.lines:
            totals[line.account_code] += line.amount_minor
    return {code: total for code, total in totals.items() if total}


@pytest.mark.parametrize(
    "state", ["initiated", "preauthorized", "rejected", "payment_intent_failed"]
)
def test_nothing_is_posted_before_capture(state):
    assert payment_entries(facts(state, status="pending")) == []


@pytest.mark.parametrize(
    ("state", "status", "expected"),
    [
        ("paid", "paid", {"platform:stripe_balance": 1070, "seller_payable:acct_1": -950,
                          "revenue:commission": -100, "revenue:buyers_premium": -50,
                          "expense:stripe_fees": 30}),
        ("confirmed", "transfered", {"platform:stripe_balance": 120, "revenue:commission": -100,
                                     "revenue:buyers_premium": -50, "expense:stripe_fees": 30}),
        ("canceled", "canceled", {"platform:stripe_balance": 1070, "expense:stripe_fees": 30,
                                  "clearing:settled_outside_portal": -1100}),
        ("disputed", "paid", {"platform:stripe_balance": -30, "disputes:pending": 1100,
                              "seller_payable:acct_1": -950, "revenue:commission": -100,
                              "revenue:buyers_premium": -50, "expense:stripe_fees": 30}),
        ("refunded", "canceled", {"platform:stripe_balance": -30, "expense:stripe_fees": 30}),
        ("dismissed", "transfered", {"platform:stripe_balance": 120, "revenue:commission": -100,
                                     "revenue:buyers_premium": -50, "expense:stripe_fees": 30}),
    ],
)  # fmt: skip
def test_each_outcome_reproduces_the_funds_flow(state, status, expected):
    entries = payment_entries(facts(state, status))
    assert balances(entries) == expected
    references = [entry.reference for entry in entries]
    assert len(set(references)) == len(references)
    assert all(reference.startswith("legacy:stripe_payments:9:") for reference in references)


def test_the_fee_is_part_of_the_capture_entry():
    (with_fee,) = payment_entries(facts("paid"))
    assert with_fee.kind == "legacy_capture"
    assert len(with_fee.lines) == 5
    (without_fee,) = payment_entries(facts("paid", real_fee=None))
    assert balances([without_fee])["platform:stripe_balance"] == 1100
    assert "expense:stripe_fees" not in balances([without_fee])


def test_a_seller_without_a_valid_account_is_owed_by_person():
    assert seller_payable_code(stripe_seller_id=None, person_legacy_id="abc") == (
        "seller_payable:person:abc"
    )
