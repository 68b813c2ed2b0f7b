"""The import end to end, against generated portals on MariaDB and on PostgreSQL."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection

from gavel.common.models import OutboxMessage
from gavel.connect.models import ConnectedAccount
from gavel.connect.services import REFRESH_BATCH_TASK, REFRESH_TASK
from gavel.connect.states import AccountStatus
from gavel.ledger.models import JournalEntry, Posting
from gavel.ledger.selectors import account_balance, trial_balance
from gavel.legacy.connections import database_connect
from gavel.legacy.generator import legacy_advance
from gavel.legacy.importer import (
    LEDGER_TAIL_SHARE,
    LOAD_LEDGER,
    LOAD_LEDGER_TAIL,
    ImportOptions,
    legacy_import,
)
from gavel.legacy.loader import ledger_split_key
from gavel.legacy.models import (
    ImportCheckpoint,
    ImportedListing,
    ImportRun,
    LegacyAnomaly,
    LegacyIdMap,
    LegacyOrder,
    LegacyPayment,
    LegacyPerson,
    LegacyStripeAccount,
)
from gavel.legacy.states import BLOCKING_ANOMALIES, CAPTURED_STATES, AnomalyKind
from gavel.legacy.tests.conftest import (
    LegacySourceFixture,
    email_conflict_make,
    email_give_back,
    generated,
    truncate_import,
)
from gavel.legacy.verify import legacy_verify
from gavel.payments.models import Order, OrderLine, OrderTransition
from gavel.users.models import User

pytestmark = pytest.mark.django_db


# A person who bought with Stripe (SQL over ``people p``, for ``email_conflict_make``).
BUYS_WITH_STRIPE = (
    "EXISTS (SELECT 1 FROM transactions t WHERE t.starter_id = p.id"
    " AND t.payment_gateway = 'stripe' AND t.deleted = 0)"
)


def snapshot() -> dict[str, object]:
    """Everything an import writes, in a comparable form."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT e.reference, e.kind, e.occurred_at, a.code, p.amount_minor, p.currency"
            " FROM ledger_posting p JOIN ledger_journalentry e ON e.id = p.entry_id"
            " JOIN ledger_ledgeraccount a ON a.id = p.account_id"
            " ORDER BY e.reference, a.code, p.amount_minor"
        )
        ledger = cursor.fetchall()
    return {
        "ledger": ledger,
        "users": sorted(
            User.objects.filter(legacy_person_id__isnull=False).values_list(
                "legacy_person_id", "email", "is_active", "is_buyer", "is_seller", "is_staff"
            )
        ),
        "anomalies": sorted(
            LegacyAnomaly.objects.values_list("kind", "legacy_table", "legacy_id", "is_blocking")
        ),
        "quarantined": sorted(
            LegacyPayment.objects.filter(is_quarantined=True).values_list("legacy_id", flat=True)
        ),
        "id_map": LegacyIdMap.objects.count(),
        "orders": sorted(
            Order.objects.values_list(
                "legacy_reference",
                "buyer__legacy_person_id",
                "status",
                "currency",
                "captured_minor",
                "refunded_minor",
                "stripe_fee_minor",
            )
        ),
        "order_lines": sorted(
            OrderLine.objects.values_list(
                "order__legacy_reference",
                "seller__legacy_person_id",
                "seller_account_id",
                "hammer_minor",
                "commission_minor",
                "transferred_minor",
                "imported_listing_link__listing__legacy_id",
            )
        ),
        "history": sorted(
            OrderTransition.objects.values_list(
                "order__legacy_reference", "from_status", "to_status", "occurred_at"
            )
        ),
        "connected_accounts": sorted(
            ConnectedAccount.objects.values_list(
                "stripe_account_id", "user__legacy_person_id", "status", "preset"
            )
        ),
    }


def run_import(source: LegacySourceFixture, **options: object) -> ImportRun:
    return legacy_import(
        database=source.database,
        options=ImportOptions(batch_size=97, **options),  # type: ignore[arg-type]
    )


def test_full_import_finds_every_anomaly_and_verifies_to_the_cent(legacy_source):
    run = run_import(legacy_source)

    assert run.status == ImportRun.Status.COMPLETED
    found = set(LegacyAnomaly.objects.values_list("kind", "legacy_table", "legacy_id"))
    assert found == legacy_source.manifest.expected()
    kinds = {kind for kind, _, _ in found}
    assert kinds == set(legacy_source.manifest.anomalies)
    assert len(kinds) == 13
    for anomaly in LegacyAnomaly.objects.all():
        assert anomaly.is_blocking == (anomaly.kind in BLOCKING_ANOMALIES)
    # An order's missing or deleted people are named with their role, buyer first.
    people = dict(LegacyPerson.objects.values_list("legacy_id", "is_deleted"))
    orders = {
        str(legacy_id): (buyer, seller)
        for legacy_id, buyer, seller in LegacyOrder.objects.values_list(
            "legacy_id", "starter_legacy_id", "listing_author_legacy_id"
        )
    }
    person_anomalies = LegacyAnomaly.objects.filter(
        legacy_table="transactions",
        kind__in=[AnomalyKind.PERSON_MISSING, AnomalyKind.PERSON_DELETED],
    )
    assert person_anomalies.count() > 0
    for anomaly in person_anomalies:
        buyer, seller = orders[anomaly.legacy_id]
        applies = (
            (lambda person: person not in people)
            if anomaly.kind == AnomalyKind.PERSON_MISSING
            else (lambda person: people.get(person, False))
        )
        assert anomaly.details == {
            "people": [
                {"role": role, "person": person}
                for role, person in (("buyer", buyer), ("seller", seller))
                if applies(person)
            ]
        }

    report = legacy_verify(database=legacy_source.database)
    differences = [row for row in report.rows if row["difference"] != 0]
    assert differences == []
    assert report.difference_count == 0
    sections = {row["section"] for row in report.rows}
    assert "seller transferred (net, by seller and currency)" in sections
    assert "seller pending (net, by seller and currency)" in sections
    assert all(total == 0 for total in trial_balance().values())

    # People became users without a usable password, roles from their accounts and orders.
    counts = legacy_source.manifest.row_counts
    assert User.objects.filter(legacy_person_id__isnull=False).count() == counts["people"]
    assert not any(user.has_usable_password() for user in User.objects.all())
    assert not User.objects.filter(is_staff=True).exists()
    assert User.objects.filter(is_seller=True).count() > 0
    deleted = LegacyPerson.objects.filter(is_deleted=True).values_list("legacy_id", flat=True)
    assert set(
        User.objects.filter(is_active=False).values_list("legacy_person_id", flat=True)
    ) == set(deleted)

    # The id map names the Gavel user of every person.
    assert LegacyIdMap.objects.filter(kind="person").count() == counts["people"]
    person = LegacyIdMap.objects.filter(kind="person").first()
    assert person is not None
    assert User.objects.get(pk=person.gavel_id).legacy_person_id == person.legacy_id

    # Sellers' Stripe accounts went to gavel.connect, unsynced until read from Stripe.
    sellers = LegacyStripeAccount.objects.filter(stripe_seller_id__regex=r"^acct_[0-9a-f]{16}$")
    imported = ConnectedAccount.objects.filter(
        stripe_account_id__in=sellers.values("stripe_seller_id")
    )
    assert imported.count() == sellers.count() > 0
    assert set(imported.values_list("status", flat=True)) == {AccountStatus.UNSYNCED}
    assert LegacyIdMap.objects.filter(kind="connected_account").count() == sellers.count()
    # One batched refresh per import batch, naming every imported account once.
    refreshed = [
        account_id
        for kwargs in OutboxMessage.objects.filter(task_name=REFRESH_BATCH_TASK).values_list(
            "kwargs", flat=True
        )
        for account_id in kwargs["connected_account_ids"]
    ]
    assert sorted(refreshed) == sorted(imported.values_list("pk", flat=True))
    assert not OutboxMessage.objects.filter(task_name=REFRESH_TASK).exists()

    # Quarantined payments posted nothing.
    quarantined = LegacyPayment.objects.filter(is_quarantined=True)
    assert quarantined.count() > 0
    for legacy_id in quarantined.values_list("legacy_id", flat=True):
        assert not JournalEntry.objects.filter(
            reference__startswith=f"legacy:stripe_payments:{legacy_id}:"
        ).exists()

    # A second run changes nothing.
    before = snapshot()
    entries = JournalEntry.objects.count()
    second = run_import(legacy_source, is_resumable=True)
    assert second.pk != run.pk
    assert snapshot() == before
    assert JournalEntry.objects.count() == entries
    changed = ImportCheckpoint.objects.filter(run=second).values_list("table", "rows_changed")
    assert {table: rows for table, rows in changed if rows} == {}
    assert legacy_verify(database=legacy_source.database).difference_count == 0


def test_dry_run_reports_and_writes_nothing(legacy_source):
    run = run_import(legacy_source, is_dry_run=True)

    assert run.is_dry_run
    assert run.stats["steps"]["stripe_payments"]["read"] == payments_in(legacy_source)
    assert sum(run.stats["new_anomalies"].values()) == len(legacy_source.manifest.expected())
    assert ImportRun.objects.count() == 0
    assert LegacyPayment.objects.count() == 0
    assert LegacyAnomaly.objects.count() == 0
    assert JournalEntry.objects.count() == 0
    assert not User.objects.filter(legacy_person_id__isnull=False).exists()
    # A real run after a dry run in the same process still posts (no stale account ids).
    run_import(legacy_source)
    assert legacy_verify(database=legacy_source.database).difference_count == 0


def payments_in(source: LegacySourceFixture) -> int:
    return source.manifest.row_counts["stripe_payments"]


def test_bulk_ledger_posting_equals_entry_post():
    small = generated("mysql", f"small_{os.getpid()}", payments=150)
    run_import(small, ledger_via_services=True)
    through_services = snapshot()
    assert through_services["ledger"]
    truncate_import()

    run_import(small)

    assert snapshot() == through_services


def test_the_ledger_is_posted_as_two_key_ranges_each_payment_once(legacy_source):
    """The SQL path posts the payments after ``ledger_split_key`` in the third lane's step;
    a second run posts nothing in either."""
    run = run_import(legacy_source)

    head, tail = (
        ImportCheckpoint.objects.get(run=run, table=step)
        for step in (LOAD_LEDGER, LOAD_LEDGER_TAIL)
    )
    split = ledger_split_key(scope_after=0, share=LEDGER_TAIL_SHARE)
    captured = {
        int(reference.split(":")[2])
        for reference in JournalEntry.objects.filter(kind="legacy_capture").values_list(
            "reference", flat=True
        )
    }
    assert int(head.last_key) <= split < int(tail.last_key)
    assert head.rows_changed + tail.rows_changed == JournalEntry.objects.count()
    assert tail.rows_changed >= sum(1 for legacy_id in captured if legacy_id > split) > 0
    assert (
        head.rows_read + tail.rows_read
        == LegacyPayment.objects.filter(is_quarantined=False).count()
    )

    again = run_import(legacy_source, is_resumable=False)
    for step in (LOAD_LEDGER, LOAD_LEDGER_TAIL):
        assert ImportCheckpoint.objects.get(run=again, table=step).rows_changed == 0


def test_set_based_reference_checks_write_what_row_by_row_checks_write(settings):
    small = generated("postgres", f"refs_{os.getpid()}", payments=150)
    settings.SET_BASED_REFERENCE_CHECKS = False
    run_import(small)
    row_by_row = snapshot()
    assert row_by_row["orders"]
    truncate_import()

    settings.SET_BASED_REFERENCE_CHECKS = True
    run_import(small)

    assert snapshot() == row_by_row


def test_delta_import_takes_what_changed_since_the_watermark(own_source):
    first = run_import(own_source)
    entries = JournalEntry.objects.count()
    advanced_at = datetime(2026, 7, 2, tzinfo=UTC)
    changed = legacy_advance(database=own_source.database, at=advanced_at)
    assert changed["payouts"]
    assert changed["captures"]

    delta = run_import(own_source, mode=ImportRun.Mode.DELTA, since=advanced_at)

    steps = delta.stats["steps"]
    assert steps["stripe_payments"]["read"] == len(changed["payouts"]) + len(changed["captures"])
    assert steps["people"]["read"] == 0
    new_references = set(
        JournalEntry.objects.filter(created_at__gt=first.finished_at).values_list(
            "reference", flat=True
        )
    )
    expected = {f"legacy:stripe_payments:{pid}:payout" for pid in changed["payouts"]}
    expected |= {f"legacy:stripe_payments:{pid}:capture" for pid in changed["captures"]}
    assert new_references == expected
    assert JournalEntry.objects.count() == entries + len(expected)
    assert legacy_verify(database=own_source.database).difference_count == 0
    # With no --since, a delta starts from the last completed run's watermark.
    again = run_import(own_source, mode=ImportRun.Mode.DELTA)
    assert again.since is not None
    assert again.since < delta.watermark
    assert JournalEntry.objects.count() == entries + len(expected)


@pytest.mark.parametrize("own_source", ["postgres"], indirect=True)
@pytest.mark.parametrize(
    ("change", "kind", "details"),
    [
        ("currency = NULL", AnomalyKind.UNKNOWN_CURRENCY, {"column": "currency", "value": None}),
        ("sum_cents = -sum_cents", AnomalyKind.NEGATIVE_MONEY, {"columns": ["sum_cents"]}),
    ],
    ids=["no_currency", "negative_sum"],
)
def test_a_payment_whose_money_cannot_be_posted_is_quarantined_not_dropped(
    own_source, change, kind, details
):
    legacy = database_connect(own_source.database, autocommit=True)
    with legacy.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM stripe_payments WHERE status = 'transfered'")
        (payment_id,) = cursor.fetchone()
        cursor.execute(f"UPDATE stripe_payments SET {change} WHERE id = %s", [payment_id])  # noqa: S608
    legacy.close()

    assert run_import(own_source).status == ImportRun.Status.COMPLETED

    anomaly = LegacyAnomaly.objects.get(legacy_table="stripe_payments", legacy_id=str(payment_id))
    assert (anomaly.kind, anomaly.is_blocking, anomaly.details) == (kind, True, details)
    assert LegacyPayment.objects.get(legacy_id=payment_id).is_quarantined
    assert not JournalEntry.objects.filter(
        reference__startswith=f"legacy:stripe_payments:{payment_id}:"
    ).exists()
    # Its money is in verification's quarantined column, not a difference (posted, or left
    # out without an anomaly, it was one).
    assert legacy_verify(database=own_source.database).difference_count == 0


@pytest.mark.parametrize("own_source", ["postgres"], indirect=True)
def test_a_deleted_transaction_and_one_paid_twice_are_imported_and_listed(own_source):
    legacy = database_connect(own_source.database, autocommit=True)
    with legacy.cursor() as cursor:
        cursor.execute(
            "SELECT id, transaction_id FROM stripe_payments WHERE status = 'transfered'"
            " ORDER BY id LIMIT 2"
        )
        (first, paid_twice), (_, deleted) = cursor.fetchall()
        # A second payment of the same transaction, with Stripe ids of its own.
        cursor.execute(
            "INSERT INTO stripe_payments (id, community_id, transaction_id, payer_id,"
            " receiver_id, status, sum_cents, commission_cents, currency, fee_cents,"
            " real_fee_cents, subtotal_cents, created_at, updated_at, buyer_commission_cents,"
            " stripe_payment_intent_id, stripe_payment_intent_status, stripe_charge_id,"
            " stripe_transfer_id, transfered_at) SELECT 99999999, community_id, transaction_id,"
            " payer_id, receiver_id, status, sum_cents, commission_cents, currency, fee_cents,"
            " real_fee_cents, subtotal_cents, created_at, updated_at, buyer_commission_cents,"
            " 'pi_Second000000000000001', stripe_payment_intent_status,"
            " 'ch_Second000000000000001', 'po_Second000000000000001', transfered_at"
            " FROM stripe_payments WHERE id = %s",
            [first],
        )
        cursor.execute("UPDATE transactions SET deleted = true WHERE id = %s", [deleted])
    legacy.close()

    run_import(own_source)

    listed = {
        (anomaly.kind, anomaly.legacy_id): (anomaly.is_blocking, anomaly.details)
        for anomaly in LegacyAnomaly.objects.filter(
            kind__in=[AnomalyKind.SEVERAL_PAYMENTS, AnomalyKind.TRANSACTION_DELETED]
        )
    }
    assert listed == {
        (AnomalyKind.SEVERAL_PAYMENTS, str(paid_twice)): (
            False,
            {"payments": [first, 99999999]},
        ),
        (AnomalyKind.TRANSACTION_DELETED, str(deleted)): (False, {}),
    }
    # Not held back: both are orders, every payment is posted, verification agrees.
    for transaction_id in (paid_twice, deleted):
        assert Order.objects.filter(legacy_reference=f"legacy:transactions:{transaction_id}")
    for payment_id in (first, 99999999):
        assert JournalEntry.objects.filter(
            reference=f"legacy:stripe_payments:{payment_id}:capture"
        ).exists()
    assert legacy_verify(database=own_source.database).difference_count == 0
    # Checked again by a delta (their rows are in every run's scope while the anomaly is
    # open), they are found again, not twice.
    run_import(own_source, mode=ImportRun.Mode.DELTA)
    assert (
        LegacyAnomaly.objects.filter(
            kind__in=[AnomalyKind.SEVERAL_PAYMENTS, AnomalyKind.TRANSACTION_DELETED],
            resolved_run__isnull=True,
        ).count()
        == 2
    )


def test_a_payment_changed_after_import_is_reported_not_silently_reposted(mysql_source):
    run_import(mysql_source)
    payment = LegacyPayment.objects.filter(status="transfered", is_quarantined=False).first()
    assert payment is not None
    assert payment.currency is not None
    assert payment.commission_cents is not None
    seller_code = (
        Posting.objects.filter(
            entry__reference=f"legacy:stripe_payments:{payment.legacy_id}:payout",
            amount_minor__gt=0,
        )
        .get()
        .account.code
    )
    balance = account_balance(code=seller_code, currency=payment.currency)

    from gavel.legacy.connections import database_connect

    legacy = database_connect(mysql_source.database, autocommit=True)
    with legacy.cursor() as cursor:
        cursor.execute(
            "UPDATE stripe_payments SET commission_cents = commission_cents + 1,"
            " updated_at = UTC_TIMESTAMP() WHERE id = %s",
            [payment.legacy_id],
        )
    legacy.close()
    run_import(mysql_source, mode=ImportRun.Mode.DELTA)

    anomaly = LegacyAnomaly.objects.get(
        kind=AnomalyKind.AMOUNT_MISMATCH, legacy_id=str(payment.legacy_id)
    )
    assert anomaly.details["commission_cents"]["stored"] == payment.commission_cents + 1
    # The ledger already holds what happened; the change is reported, not silently posted.
    assert account_balance(code=seller_code, currency=payment.currency) == balance
    report = legacy_verify(database=mysql_source.database)
    assert report.difference_count > 0
    # The difference names its payment: what was posted beside what the portal says now.
    changed = LegacyAnomaly.objects.get(kind=AnomalyKind.POSTED_AMOUNTS_CHANGED)
    assert (changed.legacy_id, changed.is_blocking, changed.resolved_run) == (
        str(payment.legacy_id),
        False,
        None,
    )
    posted = {
        "sum_cents": payment.sum_cents,
        "commission_cents": payment.commission_cents,
        "buyer_commission_cents": payment.buyer_commission_cents,
        "real_fee_cents": payment.real_fee_cents or 0,
        "currency": payment.currency.strip().upper(),
    }
    assert changed.details == {
        "posted": posted,
        "portal": {
            **posted,
            "commission_cents": payment.commission_cents + 1,
            "real_fee_cents": payment.real_fee_cents,
            "currency": payment.currency,
        },
    }
    # A delta the payment is not in keeps it open; one after the portal puts it back
    # resolves it, and verification is back to zero.
    run_import(mysql_source, mode=ImportRun.Mode.DELTA)
    assert LegacyAnomaly.objects.get(pk=changed.pk).resolved_run is None
    legacy = database_connect(mysql_source.database, autocommit=True)
    with legacy.cursor() as cursor:
        cursor.execute(
            "UPDATE stripe_payments SET commission_cents = commission_cents - 1,"
            " updated_at = UTC_TIMESTAMP() WHERE id = %s",
            [payment.legacy_id],
        )
    legacy.close()
    fixed = run_import(mysql_source, mode=ImportRun.Mode.DELTA)
    assert LegacyAnomaly.objects.get(pk=changed.pk).resolved_run == fixed
    assert legacy_verify(database=mysql_source.database).difference_count == 0
    assert account_balance(code=seller_code, currency=payment.currency) == balance


def test_an_account_gavel_already_gives_another_user_is_quarantined(mysql_source, make_user):
    from gavel.legacy.connections import database_connect

    legacy = database_connect(mysql_source.database)
    with legacy.cursor() as cursor:
        cursor.execute(
            "SELECT id, stripe_seller_id FROM stripe_accounts WHERE stripe_seller_id LIKE 'acct%%'"
            " ORDER BY id LIMIT 1"
        )
        account_id, stripe_id = cursor.fetchone()
    legacy.close()
    someone = make_user("someone@example.com")
    ConnectedAccount.objects.create(
        user=someone, stripe_account_id=stripe_id, preset=ConnectedAccount.Preset.EXPRESS
    )

    run_import(mysql_source)

    anomaly = LegacyAnomaly.objects.get(kind=AnomalyKind.ACCOUNT_CONFLICT)
    assert (anomaly.legacy_table, anomaly.legacy_id) == ("stripe_accounts", str(account_id))
    assert anomaly.is_blocking
    assert ConnectedAccount.objects.get(stripe_account_id=stripe_id).user == someone
    assert legacy_verify(database=mysql_source.database).difference_count == 0


def test_a_person_without_a_user_is_reported_on_each_of_their_transactions(mysql_source):
    """Two people with one email (in another case): the later one gets no user
    (``email_conflict``), so their transactions cannot become orders. Each is listed as
    ``person_without_user`` instead of being left out in silence; the money still balances."""
    later, _ = email_conflict_make(mysql_source.database, having=BUYS_WITH_STRIPE)

    run_import(mysql_source)

    assert LegacyAnomaly.objects.filter(
        kind=AnomalyKind.EMAIL_CONFLICT, legacy_table="people", legacy_id=later
    ).exists()
    assert not User.objects.filter(legacy_person_id=later).exists()
    reported = LegacyAnomaly.objects.filter(kind=AnomalyKind.PERSON_WITHOUT_USER)
    bought = set(
        LegacyOrder.objects.filter(
            starter_legacy_id=later, payment_gateway="stripe", is_quarantined=False
        ).values_list("legacy_id", flat=True)
    )
    assert bought
    assert {int(anomaly.legacy_id) for anomaly in reported} >= bought
    for anomaly in reported.filter(legacy_id__in=[str(legacy_id) for legacy_id in bought]):
        assert anomaly.is_blocking
        assert {"role": "buyer", "person": later} in anomaly.details["people"]
        assert not Order.objects.filter(
            legacy_reference=f"legacy:transactions:{anomaly.legacy_id}"
        ).exists()
    assert legacy_verify(database=mysql_source.database).difference_count == 0
    assert all(total == 0 for total in trial_balance().values())


def test_a_person_without_a_user_gets_their_orders_once_they_have_one(mysql_source):
    """Their payments, posted when the conflict was found, are not held back by a later run
    (which would count them twice in the verification), and their transactions are tried
    again by each run: once the portal resolves the conflict, the next delta makes the
    orders, and the ledger does not change."""
    later, own_email = email_conflict_make(mysql_source.database, having=BUYS_WITH_STRIPE)
    run_import(mysql_source)
    without_user = set(
        LegacyAnomaly.objects.filter(kind=AnomalyKind.PERSON_WITHOUT_USER).values_list(
            "legacy_id", flat=True
        )
    )
    bought = [
        str(legacy_id)
        for legacy_id in LegacyOrder.objects.filter(
            starter_legacy_id=later, payment_gateway="stripe", is_quarantined=False
        ).values_list("legacy_id", flat=True)
    ]
    assert bought
    assert without_user >= set(bought)
    references = [f"legacy:transactions:{legacy_id}" for legacy_id in bought]
    assert not Order.objects.filter(legacy_reference__in=references).exists()
    ledger = snapshot()["ledger"]
    # As an earlier version flagged them: the next run lifts flags no anomaly justifies.
    LegacyOrder.objects.filter(legacy_id__in=bought).update(is_quarantined=True)
    LegacyPayment.objects.filter(transaction_legacy_id__in=bought).update(is_quarantined=True)

    again = run_import(mysql_source, mode=ImportRun.Mode.DELTA)

    assert again.status == ImportRun.Status.COMPLETED
    assert not LegacyOrder.objects.filter(legacy_id__in=bought, is_quarantined=True).exists()
    assert not LegacyPayment.objects.filter(
        transaction_legacy_id__in=bought, is_quarantined=True
    ).exists()
    assert legacy_verify(database=mysql_source.database).difference_count == 0
    assert not Order.objects.filter(legacy_reference__in=references).exists()

    email_give_back(mysql_source.database, later, own_email)
    resolved = run_import(mysql_source, mode=ImportRun.Mode.DELTA)

    assert resolved.status == ImportRun.Status.COMPLETED
    buyer = User.objects.get(legacy_person_id=later)
    orders = Order.objects.filter(legacy_reference__in=references)
    assert orders.count() == len(bought)
    assert set(orders.values_list("buyer", flat=True)) == {buyer.pk}
    # Reported, kept, and marked resolved by the run that made the orders: not tried again.
    assert set(
        LegacyAnomaly.objects.filter(
            kind=AnomalyKind.PERSON_WITHOUT_USER, legacy_id__in=bought
        ).values_list("resolved_run", flat=True)
    ) == {resolved.pk}
    assert resolved.stats["resolved_anomalies"][AnomalyKind.PERSON_WITHOUT_USER] >= len(bought)
    assert all(order.transitions.exists() for order in orders)
    loaded = set(ImportedListing.objects.values_list("legacy_id", flat=True))
    for order in orders:  # linked to the listing they bought, loaded by the first run
        line = order.lines.get()
        bought_listing = LegacyOrder.objects.get(
            legacy_id=int(str(order.legacy_reference).rsplit(":", 1)[1])
        ).listing_legacy_id
        if bought_listing in loaded:
            assert line.imported_listing_link.listing.legacy_id == bought_listing
    assert snapshot()["ledger"] == ledger  # the money was posted once, by the first run
    assert legacy_verify(database=mysql_source.database).difference_count == 0
    assert all(total == 0 for total in trial_balance().values())


def test_a_payment_posted_before_a_delta_found_its_anomaly_is_counted_once(mysql_source):
    """A delta finds an anomaly on a transaction whose payment the first run posted (the
    portal's current_state no longer agrees with its history): the order and payment are
    quarantined from then on, and the verification counts the money where it is, in the
    ledger, not a second time in the quarantine column."""
    run_import(mysql_source)
    ledger = snapshot()["ledger"]
    legacy = database_connect(mysql_source.database, autocommit=True)
    with legacy.cursor() as cursor:
        cursor.execute(
            "SELECT t.id, p.id FROM transactions t JOIN stripe_payments p"
            " ON p.transaction_id = t.id WHERE t.current_state = 'confirmed'"
            " AND p.status = 'transfered' ORDER BY t.id LIMIT 1"
        )
        transaction_id, payment_id = cursor.fetchone()
        cursor.execute(
            "UPDATE transactions SET current_state = 'paid', updated_at = UTC_TIMESTAMP()"
            " WHERE id = %s",
            [transaction_id],
        )
    legacy.close()
    assert JournalEntry.objects.filter(
        reference=f"legacy:stripe_payments:{payment_id}:payout"
    ).exists()

    delta = run_import(mysql_source, mode=ImportRun.Mode.DELTA)

    assert delta.status == ImportRun.Status.COMPLETED
    assert LegacyAnomaly.objects.filter(
        kind=AnomalyKind.STATE_MISMATCH, legacy_table="transactions", legacy_id=str(transaction_id)
    ).exists()
    assert LegacyPayment.objects.get(legacy_id=payment_id).is_quarantined
    assert snapshot()["ledger"] == ledger
    report = legacy_verify(database=mysql_source.database)
    assert [row for row in report.rows if row["difference"]] == []

    # The portal puts the state right: the next delta checks the history again, resolves the
    # anomaly and lifts the quarantine; the money was in the ledger all along.
    # Another mismatch the portal touches without fixing it is checked again, and stays open.
    touched = (
        LegacyAnomaly.objects.filter(kind=AnomalyKind.STATE_MISMATCH)
        .exclude(legacy_id=str(transaction_id))
        .values_list("legacy_id", flat=True)
        .first()
    )
    assert touched is not None
    legacy = database_connect(mysql_source.database, autocommit=True)
    with legacy.cursor() as cursor:
        cursor.execute(
            "UPDATE transactions SET current_state = 'confirmed', updated_at = UTC_TIMESTAMP()"
            " WHERE id = %s",
            [transaction_id],
        )
        cursor.execute(
            "UPDATE transactions SET updated_at = UTC_TIMESTAMP() WHERE id = %s", [int(touched)]
        )
    legacy.close()
    fixed = run_import(mysql_source, mode=ImportRun.Mode.DELTA)

    mismatch = LegacyAnomaly.objects.get(
        kind=AnomalyKind.STATE_MISMATCH, legacy_table="transactions", legacy_id=str(transaction_id)
    )
    assert mismatch.resolved_run == fixed
    assert not LegacyOrder.objects.get(legacy_id=transaction_id).is_quarantined
    assert not LegacyPayment.objects.get(legacy_id=payment_id).is_quarantined
    assert snapshot()["ledger"] == ledger
    assert legacy_verify(database=mysql_source.database).difference_count == 0
    still = LegacyAnomaly.objects.get(
        kind=AnomalyKind.STATE_MISMATCH, legacy_table="transactions", legacy_id=touched
    )
    assert still.resolved_run is None
    assert LegacyOrder.objects.get(legacy_id=int(touched)).is_quarantined


@pytest.mark.parametrize("records_in_python", [False, True])
def test_a_payment_the_portal_fixed_is_posted_by_the_next_delta(mysql_source, records_in_python):
    """A payment quarantined for a NULL amount, fixed in the portal after the rehearsal: the
    delta stages it again, finds the row checks' anomaly gone (kept, resolved by the delta),
    lifts the quarantine and posts it once; one still broken stays held back. On both paths
    of stage one (COPY checked in SQL, records checked in Python)."""
    run_import(mysql_source, records_in_python=records_in_python)
    held = [
        int(anomaly.legacy_id)
        for anomaly in LegacyAnomaly.objects.filter(
            kind=AnomalyKind.NULL_MONEY, legacy_table="stripe_payments"
        ).order_by("legacy_id")
        if LegacyAnomaly.objects.filter(legacy_id=anomaly.legacy_id)
        .exclude(kind=AnomalyKind.NULL_MONEY)
        .count()
        == 0
        and not LegacyAnomaly.objects.filter(
            legacy_table="transactions",
            legacy_id=str(
                LegacyPayment.objects.get(legacy_id=anomaly.legacy_id).transaction_legacy_id
            ),
        ).exists()
    ]
    assert held
    fixed = held[0]
    # Another payment the portal touched without fixing it: its row check finds it again.
    still_broken = int(
        LegacyAnomaly.objects.filter(
            kind=AnomalyKind.UNKNOWN_CURRENCY, legacy_table="stripe_payments"
        )
        .values_list("legacy_id", flat=True)
        .first()
        or 0
    )
    assert still_broken
    assert LegacyPayment.objects.get(legacy_id=fixed).is_quarantined
    assert not JournalEntry.objects.filter(reference__startswith=f"legacy:stripe_payments:{fixed}:")
    legacy = database_connect(mysql_source.database, autocommit=True)
    with legacy.cursor() as cursor:
        cursor.execute(
            "UPDATE stripe_payments SET"
            " sum_cents = COALESCE(sum_cents,"
            " subtotal_cents + COALESCE(buyer_commission_cents, 0)),"
            " subtotal_cents = COALESCE(subtotal_cents, sum_cents),"
            " commission_cents = COALESCE(commission_cents, 0),"
            " buyer_commission_cents = COALESCE(buyer_commission_cents, 0),"
            " fee_cents = COALESCE(fee_cents, 0), updated_at = UTC_TIMESTAMP() WHERE id = %s",
            [fixed],
        )
        cursor.execute(
            "UPDATE stripe_payments SET updated_at = UTC_TIMESTAMP() WHERE id = %s", [still_broken]
        )
        cursor.execute("SELECT status FROM stripe_payments WHERE id = %s", [fixed])
        (status,) = cursor.fetchone()
    legacy.close()

    delta = run_import(mysql_source, mode=ImportRun.Mode.DELTA, records_in_python=records_in_python)

    assert delta.status == ImportRun.Status.COMPLETED
    resolved = LegacyAnomaly.objects.get(
        kind=AnomalyKind.NULL_MONEY, legacy_table="stripe_payments", legacy_id=str(fixed)
    )
    assert resolved.resolved_run == delta
    assert delta.stats["resolved_anomalies"] == {"null_money": 1}
    assert not LegacyPayment.objects.get(legacy_id=fixed).is_quarantined
    posted = set(
        JournalEntry.objects.filter(
            reference__startswith=f"legacy:stripe_payments:{fixed}:"
        ).values_list("kind", flat=True)
    )
    assert "legacy_capture" in posted
    assert ("legacy_payout" in posted) == (status == "transfered")
    broken = LegacyAnomaly.objects.get(
        kind=AnomalyKind.UNKNOWN_CURRENCY,
        legacy_table="stripe_payments",
        legacy_id=str(still_broken),
    )
    assert broken.resolved_run is None
    assert LegacyPayment.objects.get(legacy_id=still_broken).is_quarantined
    assert legacy_verify(database=mysql_source.database).difference_count == 0
    assert all(total == 0 for total in trial_balance().values())
    ledger = snapshot()["ledger"]

    # Nothing changed since.
    again = run_import(mysql_source, mode=ImportRun.Mode.DELTA, records_in_python=records_in_python)

    assert again.status == ImportRun.Status.COMPLETED
    assert snapshot()["ledger"] == ledger
    assert LegacyAnomaly.objects.get(pk=resolved.pk).resolved_run == delta


def _open_anomalies(kind: AnomalyKind, table: str) -> list[LegacyAnomaly]:
    return list(
        LegacyAnomaly.objects.filter(kind=kind, legacy_table=table, resolved_run=None).order_by(
            "legacy_id"
        )
    )


def _alone(table: str, legacy_id: str, kind: AnomalyKind) -> bool:
    """The row has no anomaly but ``kind``."""
    return not LegacyAnomaly.objects.filter(legacy_table=table, legacy_id=legacy_id).exclude(
        kind=kind
    )


def _person_arrives(cursor: Any, person: str) -> None:
    """The portal gets the ``people`` row it was missing."""
    cursor.execute(
        "INSERT INTO people (id, uuid, community_id, created_at, updated_at, username, email,"
        " given_name, family_name) VALUES (%s, %s, 1, UTC_TIMESTAMP(), UTC_TIMESTAMP(), %s, %s,"
        " 'Late', 'Person')",
        [person, os.urandom(16), f"late-{person}", f"late.{person.lower()}@example.com"],
    )


def _captures(payment_ids: list[int]) -> set[int]:
    """The payments among these that have a capture entry."""
    references = set(
        JournalEntry.objects.filter(kind="legacy_capture").values_list("reference", flat=True)
    )
    return {
        payment
        for payment in payment_ids
        if f"legacy:stripe_payments:{payment}:capture" in references
    }


def test_references_the_portal_fixed_are_released_by_the_next_delta(mysql_source):
    """A transaction whose buyer was missing, a payment whose transaction was missing and a
    payment claiming another's Stripe ids: held back by the reference checks. The portal
    fixes them after the rehearsal (the person and the transaction arrive, the payment gets
    ids of its own) without touching the rows held back: the next delta checks them again,
    resolves the anomalies, loads and posts them once; a listing whose author is still missing
    stays held back until the author arrives too."""
    run_import(mysql_source)
    missing = [
        anomaly
        for anomaly in _open_anomalies(AnomalyKind.PERSON_MISSING, "transactions")
        if _alone("transactions", anomaly.legacy_id, AnomalyKind.PERSON_MISSING)
        and len(anomaly.details["people"]) == 1
    ]
    assert missing
    fixed_tx = int(missing[0].legacy_id)
    person = missing[0].details["people"][0]["person"]
    (listing_missing, *_) = _open_anomalies(AnomalyKind.PERSON_MISSING, "listings")
    author = listing_missing.details["author"]
    assert not ImportedListing.objects.filter(legacy_id=int(listing_missing.legacy_id))
    (orphan, *_) = _open_anomalies(AnomalyKind.ORPHAN_PAYMENT, "stripe_payments")
    orphan_payment = LegacyPayment.objects.get(legacy_id=int(orphan.legacy_id))
    duplicated = [
        LegacyPayment.objects.get(legacy_id=int(anomaly.legacy_id))
        for anomaly in _open_anomalies(AnomalyKind.DUPLICATE_STRIPE_ID, "stripe_payments")
        if _alone("stripe_payments", anomaly.legacy_id, AnomalyKind.DUPLICATE_STRIPE_ID)
    ]
    pair = next(
        (first, second)
        for first in duplicated
        for second in duplicated
        if first.legacy_id < second.legacy_id and first.stripe_charge_id == second.stripe_charge_id
    )
    payments = {
        "person": LegacyPayment.objects.get(transaction_legacy_id=fixed_tx).legacy_id,
        "orphan": orphan_payment.legacy_id,
        "first": pair[0].legacy_id,
        "second": pair[1].legacy_id,
    }
    held = list(payments.values())
    assert all(LegacyPayment.objects.get(legacy_id=payment).is_quarantined for payment in held)
    assert not _captures(held)
    assert not Order.objects.filter(legacy_reference=f"legacy:transactions:{fixed_tx}")

    legacy = database_connect(mysql_source.database, autocommit=True)
    with legacy.cursor() as cursor:
        _person_arrives(cursor, person)
        # The orphan's transaction arrives: a copy of a clean confirmed one, between the
        # payment's payer and receiver, with its history.
        cursor.execute(
            "SELECT t.id FROM transactions t JOIN stripe_payments p ON p.transaction_id = t.id"
            " WHERE t.current_state = 'confirmed' AND p.status = %s ORDER BY t.id LIMIT 1",
            [orphan_payment.status],
        )
        (template,) = cursor.fetchone()
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE()"
            " AND table_name = 'transactions' AND column_name NOT IN ('id', 'starter_id',"
            " 'listing_author_id', 'updated_at') ORDER BY ordinal_position"
        )
        columns = ", ".join(f"`{name}`" for (name,) in cursor.fetchall())
        cursor.execute(  # the column names are the server's own
            f"INSERT INTO transactions (id, starter_id, listing_author_id, updated_at, {columns})"  # noqa: S608
            f" SELECT %s, %s, %s, UTC_TIMESTAMP(), {columns} FROM transactions WHERE id = %s",
            [
                orphan_payment.transaction_legacy_id,
                orphan_payment.payer_legacy_id,
                orphan_payment.receiver_legacy_id,
                template,
            ],
        )
        cursor.execute("SELECT MAX(id) FROM transaction_transitions")
        (last_transition,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO transaction_transitions (id, transaction_id, to_state, metadata,"
            " sort_key, most_recent, created_at, updated_at)"
            " SELECT id + %s, %s, to_state, metadata, sort_key, most_recent, created_at,"
            " UTC_TIMESTAMP() FROM transaction_transitions WHERE transaction_id = %s",
            [last_transition, orphan_payment.transaction_legacy_id, template],
        )
        # The second payment gets ids of its own.
        second = pair[1]
        cursor.execute(
            "UPDATE stripe_payments SET stripe_charge_id = %s, stripe_payment_intent_id = %s,"
            " updated_at = UTC_TIMESTAMP() WHERE id = %s",
            [f"ch_Fixed{second.legacy_id}x", f"pi_Fixed{second.legacy_id}x", second.legacy_id],
        )
    legacy.close()

    delta = run_import(mysql_source, mode=ImportRun.Mode.DELTA)

    assert delta.status == ImportRun.Status.COMPLETED
    resolved = set(
        LegacyAnomaly.objects.filter(resolved_run=delta).values_list(
            "kind", "legacy_table", "legacy_id"
        )
    )
    assert resolved >= {
        (AnomalyKind.PERSON_MISSING, "transactions", str(fixed_tx)),
        (AnomalyKind.ORPHAN_PAYMENT, "stripe_payments", str(orphan_payment.legacy_id)),
        (AnomalyKind.DUPLICATE_STRIPE_ID, "stripe_payments", str(pair[0].legacy_id)),
        (AnomalyKind.DUPLICATE_STRIPE_ID, "stripe_payments", str(pair[1].legacy_id)),
    }
    assert not any(LegacyPayment.objects.get(legacy_id=payment).is_quarantined for payment in held)
    captured = {state.value for state in CAPTURED_STATES}
    states = dict(
        LegacyOrder.objects.filter(
            legacy_id__in=LegacyPayment.objects.filter(legacy_id__in=held).values(
                "transaction_legacy_id"
            )
        ).values_list("legacy_id", "current_state")
    )
    of_payment = dict(
        LegacyPayment.objects.filter(legacy_id__in=held).values_list(
            "legacy_id", "transaction_legacy_id"
        )
    )
    expected = {
        payment for payment in held if str(states.get(of_payment[payment] or 0)) in captured
    }
    assert expected >= {payments["person"], payments["orphan"], payments["second"]}
    assert _captures(held) == expected
    for tx in (fixed_tx, orphan_payment.transaction_legacy_id):
        assert Order.objects.filter(legacy_reference=f"legacy:transactions:{tx}").exists()
    # Not fixed yet: checked again, found again, still held back.
    listing_missing.refresh_from_db()
    assert listing_missing.resolved_run is None
    assert not ImportedListing.objects.filter(legacy_id=int(listing_missing.legacy_id))
    assert legacy_verify(database=mysql_source.database).difference_count == 0
    assert all(total == 0 for total in trial_balance().values())
    everything = snapshot()

    # The listing's author arrives: the listing is loaded by the next delta.
    legacy = database_connect(mysql_source.database, autocommit=True)
    with legacy.cursor() as cursor:
        _person_arrives(cursor, author)
    legacy.close()

    later = run_import(mysql_source, mode=ImportRun.Mode.DELTA)

    listing_missing.refresh_from_db()
    assert listing_missing.resolved_run == later
    assert ImportedListing.objects.filter(legacy_id=int(listing_missing.legacy_id)).exists()
    assert snapshot()["ledger"] == everything["ledger"]
    assert legacy_verify(database=mysql_source.database).difference_count == 0
    everything = snapshot()

    again = run_import(mysql_source, mode=ImportRun.Mode.DELTA)

    assert again.status == ImportRun.Status.COMPLETED
    assert snapshot() == everything
    assert not LegacyAnomaly.objects.filter(resolved_run=again).exists()
    assert LegacyAnomaly.objects.filter(resolved_run=delta).count() == len(resolved)
