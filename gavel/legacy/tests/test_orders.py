"""Staged legacy transactions loaded as Gavel orders, with their history, per the mapping."""

from __future__ import annotations

from collections import defaultdict
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError

from gavel.legacy.importer import (
    LOAD_ORDERS,
    LOAD_ORDERS_TAIL,
    ORDERS_TAIL_SHARE,
    ImportOptions,
    legacy_import,
)
from gavel.legacy.models import ImportCheckpoint, LegacyOrder, LegacyOrderTransition, LegacyPayment
from gavel.legacy.orders import REFERENCE_PREFIX, orders_in_flight_adopt, orders_split_key
from gavel.legacy.states import CAPTURED_STATES, GAVEL_ORDER_STATUS, LegacyState
from gavel.legacy.tests.conftest import LegacySourceFixture, truncate_import
from gavel.payments.fees import LineFees
from gavel.payments.models import Order, PaymentAttempt
from gavel.payments.services.orders import (
    ImportedOrder,
    ImportedPayment,
    OrderImport,
    orders_import,
    orders_import_apply,
    orders_import_tables_reset,
)
from gavel.payments.tests.factories import seller_make, user_make

pytestmark = pytest.mark.django_db


def test_transactions_become_orders_in_the_mapped_state_with_full_history(
    legacy_source: LegacySourceFixture,
) -> None:
    truncate_import()
    run = legacy_import(database=legacy_source.database, options=ImportOptions(is_resumable=False))
    histories: dict[int, list[str]] = defaultdict(list)
    for transaction_id, state in LegacyOrderTransition.objects.order_by(
        "sort_key", "legacy_id"
    ).values_list("transaction_legacy_id", "to_state"):
        assert transaction_id is not None
        assert state is not None
        histories[transaction_id].append(state)
    staged = {row.legacy_id: row for row in LegacyOrder.objects.all()}
    sums = dict(
        LegacyPayment.objects.filter(is_quarantined=False).values_list(
            "transaction_legacy_id", "sum_cents"
        )
    )
    orders = list(Order.objects.filter(kind=Order.Kind.LEGACY).prefetch_related("transitions"))
    assert len(orders) > 100
    statuses = set()
    for order in orders:
        assert order.legacy_reference is not None
        legacy_id = int(order.legacy_reference.removeprefix(REFERENCE_PREFIX))
        source, states = staged[legacy_id], histories[legacy_id]
        assert (source.payment_gateway, source.is_quarantined) == ("stripe", False)
        assert order.status == GAVEL_ORDER_STATUS[LegacyState(states[-1])][0]
        steps = sorted(order.transitions.all(), key=lambda step: step.pk)
        assert [step.reason for step in steps] == [f"legacy {state}" for state in states]
        # Each step's status: the last one mapped so far ('pending' before any).
        expected, status = [], "pending"
        for state in states:
            mapped = GAVEL_ORDER_STATUS.get(LegacyState(state), ("", ""))[0]
            status = mapped or status
            expected.append(status)
        assert [step.to_status for step in steps] == expected
        assert [step.from_status for step in steps] == ["", *expected[:-1]]
        assert steps[-1].to_status == order.status
        if states[-1] in CAPTURED_STATES:
            assert order.captured_minor == order.total_minor == sums[legacy_id]
        else:
            assert order.captured_minor == 0
        statuses.add(order.status)
    assert {"pending", "authorized", "captured", "refunded", "disputed"} <= statuses
    # Loaded as two key ranges (the tail in the third lane, beside the ledger and the head),
    # split where ``orders_split_key`` says, each order once.
    head, tail = (
        ImportCheckpoint.objects.get(run=run, table=step)
        for step in (LOAD_ORDERS, LOAD_ORDERS_TAIL)
    )
    split = orders_split_key(scope_after=0, share=ORDERS_TAIL_SHARE)
    legacy_ids = [
        int((order.legacy_reference or "").removeprefix(REFERENCE_PREFIX)) for order in orders
    ]
    assert int(head.last_key) <= split < int(tail.last_key)
    assert tail.rows_changed == sum(1 for legacy_id in legacy_ids if legacy_id > split) > 0
    assert head.rows_changed + tail.rows_changed == len(orders)

    again = legacy_import(
        database=legacy_source.database, options=ImportOptions(is_resumable=False)
    )
    for step in (LOAD_ORDERS, LOAD_ORDERS_TAIL):
        assert ImportCheckpoint.objects.get(run=again, table=step).rows_changed == 0
    assert Order.objects.count() == len(orders)


def _row(buyer_id: int, seller_id: int, **changes: Any) -> ImportedOrder:
    values: dict[str, Any] = {
        "buyer_id": buyer_id,
        "seller_id": seller_id,
        "seller_account_id": "acct_x",
        "currency": "usd",
        "fees": LineFees(
            hammer_minor=1_000, buyers_premium_minor=50, buyer_fee_minor=0, commission_minor=100
        ),
        "imported": OrderImport(status="authorized", legacy_reference=f"{REFERENCE_PREFIX}1"),
    }
    values.update(changes)
    return ImportedOrder(**values)


def test_orders_import_refuses_a_bad_batch_whole_and_skips_what_it_has(db: None) -> None:
    from gavel.common.errors import ServiceError

    buyer, seller = user_make(), user_make(seller=True)
    good = _row(buyer.pk, seller.pk)
    bad_rows = [
        _row(buyer.pk, seller.pk, currency="XXX"),
        _row(buyer.pk, seller.pk, funds_flow="cash"),
        _row(buyer.pk, seller.pk, imported=OrderImport(status="lost")),
        _row(buyer.pk, seller.pk, imported=OrderImport(status="pending")),
        _row(buyer.pk, seller.pk, fees=LineFees(0, 0, 0, 0)),
        _row(buyer.pk, seller.pk, payment=ImportedPayment(captured_minor=5, refunded_minor=6)),
        _row(buyer.pk, seller.pk, payment=ImportedPayment(captured_minor=-1)),
    ]
    for bad in bad_rows:
        with pytest.raises(ServiceError) as refused:
            orders_import(rows=[good, bad])
        assert refused.value.code == "order_import_invalid"
    assert Order.objects.count() == 0
    assert orders_import(rows=[good]) == 1
    assert orders_import(rows=[good]) == 0
    order = Order.objects.get()
    assert (order.currency, order.total_minor, order.status) == ("USD", 1_050, "authorized")
    assert list(order.transitions.values_list("from_status", "to_status", "operation")) == [
        ("", "authorized", "create")
    ]


def test_orders_import_refuses_a_reference_or_a_seq_twice_in_the_batch(db: None) -> None:
    from django.db import connection, transaction

    from gavel.common.errors import ServiceError

    buyer, seller = user_make(), user_make(seller=True)
    row = _row(buyer.pk, seller.pk)
    with pytest.raises(ServiceError, match="reference twice in the batch"):
        orders_import(rows=[row, row])

    # A caller filling the import tables itself (the legacy import) names each step's order
    # by its seq: two orders under one seq would share a history.
    with transaction.atomic():
        orders_import_tables_reset()
        with connection.cursor() as cursor:
            for reference in (f"{REFERENCE_PREFIX}1", f"{REFERENCE_PREFIX}2"):
                cursor.execute(
                    "INSERT INTO _orders_import (seq, legacy_reference, buyer_id, seller_id,"
                    " seller_account_id, currency, funds_flow, description, status,"
                    " hammer_minor, buyers_premium_minor, buyer_fee_minor, commission_minor,"
                    " stripe_payment_intent_id, stripe_charge_id, captured_minor,"
                    " stripe_fee_minor, refunded_minor, disputed_minor, transferred_minor)"
                    " VALUES (7, %s, %s, %s, 'acct_x', 'USD', 'destination_charge', '',"
                    " 'authorized', 1000, 0, 0, 100, '', '', 0, 0, 0, 0, 0)",
                    [reference, buyer.pk, seller.pk],
                )
        with pytest.raises(ServiceError, match="seq twice in the batch"):
            orders_import_apply()
    assert Order.objects.count() == 0


def test_orders_known_to_be_new_fail_the_batch_on_a_reference_that_is_an_order(db: None) -> None:
    buyer, seller = user_make(), user_make(seller=True)
    first = _row(buyer.pk, seller.pk)
    second = _row(
        buyer.pk,
        seller.pk,
        imported=OrderImport(status="authorized", legacy_reference=f"{REFERENCE_PREFIX}2"),
    )
    assert orders_import(rows=[first], is_all_new=True) == 1

    with pytest.raises(IntegrityError):
        orders_import(rows=[second, first], is_all_new=True)

    assert list(Order.objects.values_list("legacy_reference", flat=True)) == [
        f"{REFERENCE_PREFIX}1"
    ]  # the batch wrote nothing, not even its new order
    assert orders_import(rows=[second, first]) == 1  # without: the known one is skipped


def test_in_flight_adoption_refuses_an_intent_that_is_not_the_order(sandbox: Any, db: None) -> None:
    seller, account_id = seller_make(sandbox)
    buyer = user_make()
    client = sandbox.client()
    customer = client.v1.customers.create(params={"email": buyer.email})
    intent = client.v1.payment_intents.create(
        params={
            "amount": 999,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": "pm_card_visa",
            "confirm": True,
            "capture_method": "manual",
        }
    )
    orders_import(
        rows=[
            _row(
                buyer.pk,
                seller.pk,
                seller_account_id=account_id,
                payment=ImportedPayment(stripe_payment_intent_id=intent.id),
            ),
            _row(
                buyer.pk,
                seller.pk,
                seller_account_id=account_id,
                imported=OrderImport(status="authorized", legacy_reference=f"{REFERENCE_PREFIX}2"),
                payment=ImportedPayment(stripe_payment_intent_id="pi_NotInStripe0001"),
            ),
        ]
    )
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("legacy_adopt_in_flight", stdout=out)
    assert out.getvalue().startswith("adopted 0, refused 2, retry later 0")
    result = orders_in_flight_adopt()
    assert result.adopted == []
    assert result.retry_later == []
    assert sorted(result.refused) == sorted(Order.objects.values_list("pk", flat=True))
    assert PaymentAttempt.objects.count() == 0
    assert set(Order.objects.values_list("status", flat=True)) == {"authorized"}


def test_an_imported_order_moves_on_only_when_its_history_is_extended(db: None) -> None:
    from datetime import UTC, datetime

    from gavel.payments.services.orders import HistoryStep, orders_import_or_move

    buyer, seller = user_make(), user_make(seller=True)
    at = [datetime(2025, 1, day, tzinfo=UTC) for day in range(1, 5)]
    authorized = [
        HistoryStep("", "pending", "legacy_import", at[0], "legacy not_started"),
        HistoryStep("pending", "authorized", "legacy_import", at[1], "legacy preauthorized"),
    ]
    captured = HistoryStep("authorized", "captured", "legacy_import", at[2], "legacy paid")
    paid = ImportedPayment(captured_minor=1_050, stripe_fee_minor=30, captured_at=at[2])
    reference = f"{REFERENCE_PREFIX}1"

    def row(status: str, history: list[HistoryStep], **changes: Any) -> ImportedOrder:
        imported = OrderImport(status=status, history=history, legacy_reference=reference)
        return _row(buyer.pk, seller.pk, imported=imported, **changes)

    first = orders_import_or_move(rows=[row("authorized", authorized)])
    assert (first.created, first.moved, first.refused) == (1, 0, {})
    order = Order.objects.get()

    # A rewritten history (an earlier step changed) is refused; nothing changes.
    rewritten = [authorized[0], HistoryStep("pending", "authorized", "legacy_import", at[3])]
    refused = orders_import_or_move(rows=[row("captured", [*rewritten, captured], payment=paid)])
    assert (refused.created, refused.moved, refused.refused) == (
        0,
        0,
        {reference: "history_diverged"},
    )
    order.refresh_from_db()
    assert (order.status, order.captured_minor, order.transitions.count()) == ("authorized", 0, 2)

    # The same history and one more step: appended, the payment facts taken.
    moved = orders_import_or_move(
        rows=[
            row("captured", [*authorized, captured], payment=paid, funds_flow="separate_transfers")
        ]
    )
    assert (moved.created, moved.moved, moved.refused) == (0, 1, {})
    order.refresh_from_db()
    assert (order.status, order.funds_flow, order.captured_minor, order.stripe_fee_minor) == (
        "captured",
        "separate_transfers",
        1_050,
        30,
    )
    assert list(order.transitions.order_by("pk").values_list("from_status", "to_status")) == [
        ("", "pending"),
        ("pending", "authorized"),
        ("authorized", "captured"),
    ]
    again = orders_import_or_move(
        rows=[
            row("captured", [*authorized, captured], payment=paid, funds_flow="separate_transfers")
        ]
    )
    assert (again.created, again.moved, again.refused) == (0, 0, {})
    assert order.transitions.count() == 3
