"""A delta import moves orders already loaded when the portal moved them on before the freeze:
new legacy steps appended to the order's history, status and payment facts as a fresh import
would give them, the new money facts posted once, illegal moves reported and left alone."""

# The legacy SQL below takes only the dialect's boolean literals from this code.
# ruff: noqa: S608
from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection

from gavel.ledger.models import JournalEntry
from gavel.legacy.connections import Dialect, LegacyDatabase, database_connect
from gavel.legacy.importer import LOAD_ORDERS, LOAD_ORDERS_TAIL, ImportOptions, legacy_import
from gavel.legacy.models import ImportCheckpoint, ImportRun, LegacyAnomaly
from gavel.legacy.orders import REFERENCE_PREFIX
from gavel.legacy.states import AnomalyKind
from gavel.legacy.tests.conftest import LegacySourceFixture, generated, truncate_import
from gavel.legacy.tests.test_import import snapshot
from gavel.legacy.verify import legacy_verify
from gavel.payments.models import Order

pytestmark = pytest.mark.django_db

MOVED_AT = datetime(2026, 7, 2, 12, 0, tzinfo=UTC)  # after every generated row

# Moves the portal makes between the rehearsal and the freeze: (final state now, new state,
# the stripe_payments.status it leaves, or None when the payment row is not touched).
MOVES: tuple[tuple[str, str, str | None], ...] = (
    ("preauthorized", "paid", "paid"),
    ("paid", "confirmed", None),
    ("paid", "disputed", None),
    ("paid", "canceled", "canceled"),
    ("disputed", "refunded", "canceled"),
    ("disputed", "dismissed", None),
)
# confirmed -> paid is not a move of the portal's machine: reported, the order left alone.
ILLEGAL = ("confirmed", "paid", None)
PER_MOVE = 2


def _clean_loaded(state: str, count: int, taken: set[int]) -> list[int]:
    """Transactions loaded as orders, in ``state``, with a loaded payment and no anomaly."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT o.legacy_id FROM legacy_legacyorder o"
            " JOIN legacy_legacypayment p ON p.transaction_legacy_id = o.legacy_id"
            " JOIN payments_order g ON g.legacy_reference = %s || o.legacy_id"
            " WHERE o.current_state = %s AND NOT o.is_quarantined AND NOT p.is_quarantined"
            " AND p.status = %s AND NOT EXISTS (SELECT 1 FROM legacy_legacyanomaly a WHERE"
            " (a.legacy_table = 'transactions' AND a.legacy_id = o.legacy_id::text) OR"
            " (a.legacy_table = 'stripe_payments' AND a.legacy_id = p.legacy_id::text))"
            " ORDER BY o.legacy_id",
            [REFERENCE_PREFIX, state, "pending" if state == "preauthorized" else "paid"],
        )
        found = [row[0] for row in cursor.fetchall() if row[0] not in taken]
    assert len(found) >= count, state
    return found[:count]


def portal_move(database: LegacyDatabase, transaction_id: int, state: str, status: str | None):
    """One transition, written as the portal writes it."""
    stamp = MOVED_AT.strftime("%Y-%m-%d %H:%M:%S")
    false, true = ("0", "1") if database.dialect is Dialect.MYSQL else ("false", "true")
    legacy = database_connect(database, autocommit=True)
    try:
        with legacy.cursor() as cursor:
            cursor.execute(
                "SELECT MAX(sort_key) FROM transaction_transitions WHERE transaction_id = %s",
                [transaction_id],
            )
            (sort_key,) = cursor.fetchone()
            cursor.execute("SELECT MAX(id) FROM transaction_transitions")
            (last_id,) = cursor.fetchone()
            cursor.execute(
                f"UPDATE transaction_transitions SET most_recent = {false}, updated_at = %s"
                " WHERE transaction_id = %s",
                [stamp, transaction_id],
            )
            cursor.execute(
                "INSERT INTO transaction_transitions (id, to_state, sort_key, transaction_id,"
                f" most_recent, created_at, updated_at) VALUES (%s, %s, %s, %s, {true}, %s, %s)",
                [int(last_id) + 1, state, int(sort_key) + 1, transaction_id, stamp, stamp],
            )
            cursor.execute(
                "UPDATE transactions SET current_state = %s, last_transition_at = %s,"
                " updated_at = %s WHERE id = %s",
                [state, stamp, stamp, transaction_id],
            )
            if status == "paid":  # captured: Stripe's fee is known
                cursor.execute(
                    "UPDATE stripe_payments SET status = 'paid',"
                    " stripe_payment_intent_status = 'success', real_fee_cents = fee_cents,"
                    " available_on = %s, updated_at = %s WHERE transaction_id = %s",
                    [stamp, stamp, transaction_id],
                )
            elif status is not None:
                cursor.execute(
                    "UPDATE stripe_payments SET status = %s, updated_at = %s"
                    " WHERE transaction_id = %s",
                    [status, stamp, transaction_id],
                )
    finally:
        legacy.close()


def orders_snapshot() -> dict[str, tuple[Any, ...]]:
    """Every legacy order as a fresh import would write it: status, money, line, history."""
    orders: dict[str, tuple[Any, ...]] = {}
    for order in Order.objects.filter(kind=Order.Kind.LEGACY).prefetch_related(
        "lines", "transitions"
    ):
        assert order.legacy_reference is not None
        (line,) = order.lines.all()
        history = [
            (step.from_status, step.to_status, step.operation, step.reason, step.occurred_at)
            for step in sorted(order.transitions.all(), key=lambda step: step.pk)
        ]
        orders[order.legacy_reference] = (
            order.status, order.funds_flow, order.currency, order.total_minor,
            order.captured_minor, order.refunded_minor, order.disputed_minor,
            order.stripe_fee_minor, order.stripe_payment_intent_id, order.stripe_charge_id,
            order.captured_at, line.seller_account_id, line.hammer_minor, line.commission_minor,
            line.transferred_minor, history,
        )  # fmt: skip
    return orders


def delta(source: LegacySourceFixture) -> ImportRun:
    return legacy_import(
        database=source.database,
        options=ImportOptions(batch_size=97, mode=ImportRun.Mode.DELTA, since=MOVED_AT),
    )


@pytest.mark.parametrize("dialect", ["mysql", "postgres"])
def test_a_delta_moves_loaded_orders_as_a_fresh_import_would(dialect: str) -> None:
    source = generated(dialect, f"delta_{os.getpid()}", payments=2_000)
    truncate_import()
    legacy_import(database=source.database, options=ImportOptions(batch_size=97))
    before = orders_snapshot()
    taken: set[int] = set()
    moved: dict[int, tuple[str, str, str | None]] = {}
    for move in (*MOVES, ILLEGAL):
        for transaction_id in _clean_loaded(move[0], PER_MOVE, taken):
            taken.add(transaction_id)
            moved[transaction_id] = move
            portal_move(source.database, transaction_id, move[1], move[2])
    entries = set(JournalEntry.objects.values_list("reference", flat=True))

    run = delta(source)

    after = orders_snapshot()
    illegal = {tx for tx, move in moved.items() if move == ILLEGAL}
    changed = {reference for reference in after if after[reference] != before[reference]}
    assert changed == {f"{REFERENCE_PREFIX}{tx}" for tx in set(moved) - illegal}
    assert set(after) == set(before)
    for tx, (_, new_state, _) in moved.items():
        reference = f"{REFERENCE_PREFIX}{tx}"
        history = after[reference][-1]
        if tx in illegal:
            assert after[reference] == before[reference]
            continue
        # The old history is kept, the new step appended.
        assert history[:-1] == before[reference][-1]
        assert history[-1][2:] == ("legacy_import", f"legacy {new_state}", MOVED_AT)
        assert history[-1][0] == before[reference][0]
        assert history[-1][1] == after[reference][0]
    assert after[f"{REFERENCE_PREFIX}{min(illegal)}"][0] == Order.Status.CAPTURED
    refused = LegacyAnomaly.objects.filter(kind=AnomalyKind.ORDER_MOVE_REFUSED, run=run)
    assert {(a.legacy_table, int(a.legacy_id), a.is_blocking) for a in refused} == {
        ("transactions", tx, False) for tx in illegal
    }
    assert {a.details["reason"] for a in refused} == {"move_not_allowed"}
    # The new money facts, posted once.
    new_entries = set(JournalEntry.objects.values_list("reference", flat=True)) - entries
    steps = {"paid": "capture", "disputed": "dispute_opened", "canceled": "refund_outside"}
    steps |= {"refunded": "dispute_lost", "dismissed": "dispute_won"}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT transaction_legacy_id, legacy_id FROM legacy_legacypayment"
            " WHERE transaction_legacy_id = ANY(%s)",
            [list(moved)],
        )
        payments = dict(cursor.fetchall())
    assert new_entries == {
        f"legacy:stripe_payments:{payments[tx]}:{steps[new_state]}"
        for tx, (_, new_state, _) in moved.items()
        if new_state in steps and tx not in illegal
    }
    assert legacy_verify(database=source.database).difference_count == 0

    # A second delta changes nothing.
    everything = snapshot()
    again = delta(source)
    assert orders_snapshot() == after
    assert snapshot() == everything
    for step in (LOAD_ORDERS, LOAD_ORDERS_TAIL):
        assert ImportCheckpoint.objects.get(run=again, table=step).rows_changed == 0
    assert not LegacyAnomaly.objects.filter(run=again).exists()

    # The same as a fresh import of the moved portal (the illegal move aside).
    ledger = everything["ledger"]
    truncate_import()
    legacy_import(database=source.database, options=ImportOptions(batch_size=97))
    fresh = orders_snapshot()
    for tx in illegal:
        fresh.pop(f"{REFERENCE_PREFIX}{tx}")
        after.pop(f"{REFERENCE_PREFIX}{tx}")
    assert fresh == after
    assert snapshot()["ledger"] == ledger
