from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection

from gavel.legacy.connections import Dialect, LegacyConnectionError, database_parse
from gavel.legacy.reader import (
    SPECS_BY_TABLE,
    STRIPE_ID_PATTERNS,
    LegacySource,
    PaymentRecord,
    StripeAccountRecord,
    page_anomalies,
    stripe_id_is_valid,
    stripe_id_sql,
)
from gavel.legacy.states import AnomalyKind, move_kind

NOW = datetime(2026, 1, 1)


def payment(**changes) -> PaymentRecord:
    values: dict[str, Any] = {
        "legacy_id": 1,
        "transaction_legacy_id": 1,
        "payer_legacy_id": "a",
        "receiver_legacy_id": "b",
        "community_id": 1,
        "status": "paid",
        "sum_cents": 100,
        "subtotal_cents": 100,
        "commission_cents": 10,
        "buyer_commission_cents": 0,
        "fee_cents": 3,
        "real_fee_cents": 3,
        "currency": "EUR",
        "stripe_charge_id": "ch_1234567890abcdef",
        "stripe_payment_intent_id": "pi_1234567890abcdef",
        "stripe_payment_intent_status": "success",
        "stripe_transfer_id": None,
        "transfered_at": None,
        "available_on": None,
        "legacy_created_at": NOW,
        "legacy_updated_at": NOW,
    }
    values.update(changes)
    return PaymentRecord(**values)


def test_a_clean_payment_has_no_anomaly():
    assert page_anomalies("stripe_payments", [payment()]) == []


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"sum_cents": None}, AnomalyKind.NULL_MONEY),
        ({"stripe_charge_id": "N/A"}, AnomalyKind.INVALID_STRIPE_ID),
        ({"stripe_charge_id": ""}, AnomalyKind.INVALID_STRIPE_ID),
        ({"stripe_charge_id": "pi_1234567890abcdef"}, AnomalyKind.INVALID_STRIPE_ID),
        ({"stripe_transfer_id": "manual payout"}, AnomalyKind.INVALID_STRIPE_ID),
        ({"currency": "eur"}, AnomalyKind.CURRENCY_CASE),
        ({"currency": "EURO"}, AnomalyKind.UNKNOWN_CURRENCY),
    ],
)
def test_row_anomalies(changes, kind):
    found = page_anomalies("stripe_payments", [payment(**changes)])
    assert [anomaly.kind for anomaly in found] == [kind]
    assert found[0].legacy_table == "stripe_payments"
    assert found[0].legacy_id == "1"


def test_payout_and_transfer_ids_are_both_stripe_ids():
    for transfer in ("po_1234567890abcdef", "tr_1234567890abcdef"):
        assert page_anomalies("stripe_payments", [payment(stripe_transfer_id=transfer)]) == []


def test_account_ids_are_checked():
    account = StripeAccountRecord(
        1, "p", 1, "acct-test", "ba_1234567890ab", "cus_12345678", None, NOW, NOW
    )
    (anomaly,) = page_anomalies("stripe_accounts", [account])
    assert anomaly.kind == AnomalyKind.INVALID_STRIPE_ID
    assert anomaly.details == {"values": {"stripe_seller_id": "acct-test"}}
    assert page_anomalies("people", [object()]) == []


@pytest.mark.parametrize(
    ("source", "target", "kind"),
    [
        (None, "not_started", "allowed"),
        (None, "paid", "not_allowed"),
        ("initiated", "preauthorized", "allowed"),
        ("initiated", "paid", "not_allowed"),
        ("pending", "accepted", "deprecated"),
        ("paid", "bogus", "not_allowed"),
        ("bogus", "paid", "not_allowed"),
        ("disputed", "dismissed", "allowed"),
    ],
)
def test_move_kind(source, target, kind):
    assert move_kind(source, target) == kind


@pytest.mark.parametrize(
    ("url", "dialect", "port", "user", "name"),
    [
        ("mysql://root@127.0.0.1/legacy", Dialect.MYSQL, 3306, "root", "legacy"),
        ("mariadb://u:p%40ss@db:3307/x", Dialect.MYSQL, 3307, "u", "x"),
        ("postgres://127.0.0.1/legacy", Dialect.POSTGRES, 5432, "postgres", "legacy"),
        ("postgresql+psycopg://me@h:6432/l", Dialect.POSTGRES, 6432, "me", "l"),
    ],
)
def test_database_parse(url, dialect, port, user, name):
    database = database_parse(url)
    assert (database.dialect, database.port, database.user, database.name) == (
        dialect,
        port,
        user,
        name,
    )
    assert database_parse(database.url) == database


def test_password_survives_the_url_round_trip():
    assert database_parse("mariadb://u:p%40ss@db:3307/x").password == "p@ss"


@pytest.mark.parametrize("url", ["", "sqlite:///x", "mysql://127.0.0.1/"])
def test_database_parse_refuses(url):
    with pytest.raises(LegacyConnectionError):
        database_parse(url)


def test_reader_pages_in_key_order_and_converts_types(legacy_source):
    with LegacySource(legacy_source.database) as source:
        clock = source.clock()
        assert clock.tzinfo is UTC
        spec = SPECS_BY_TABLE["people"]
        pages = list(source.pages(spec, after="", limit=50))
        people = [person for page in pages for person in page]
        assert len(people) == legacy_source.manifest.row_counts["people"]
        keys = [person.legacy_id for person in people]
        assert len(set(keys)) == len(keys)
        assert all(isinstance(person.is_deleted, bool) for person in people)
        assert all(len(person.uuid.bytes) == 16 for person in people)
        assert all(len(person.legacy_id) == 22 for person in people)
        # Nothing updated in the future: a delta from now reads nothing.
        assert source.count("people", since=clock) == 0
        assert list(source.pages(spec, after="", limit=50, since=clock)) == []


def test_every_legacy_state_has_a_gavel_status():
    from gavel.legacy.states import GAVEL_ORDER_STATUS, LegacyState
    from gavel.payments.models import Order

    assert set(GAVEL_ORDER_STATUS) == set(LegacyState)
    for status, reason in GAVEL_ORDER_STATUS.values():
        assert status == "" or status in Order.Status.values
        assert reason


@pytest.mark.django_db
@pytest.mark.parametrize("column", sorted(STRIPE_ID_PATTERNS))
def test_the_sql_test_of_a_stripe_id_agrees_with_the_pattern(column: str) -> None:
    prefix = STRIPE_ID_PATTERNS[column].pattern.removeprefix("^").split("_", 1)[0]
    first, *others = prefix.strip("()").split("|")
    values = [
        *(f"{other}_12345678" for other in others),
        f"{first}_12345678",  # the shortest valid tail
        f"{first}_1234567",  # one character short
        f"{first}_AbCdEf0123456789xyz",
        f"{first}_1234_5678",  # an underscore in the tail
        f"{first}_12345678\n",  # a trailing newline is not part of an id
        f"{first}_1234567é",  # a letter outside A-Z
        f"{first}_é1234567890",
        f" {first}_12345678",
        f"{first.upper()}_12345678",
        f"{first}12345678",
        f"{first}_",
        "",
        "xx_12345678",
        f"{first}_{first}_12345678",
        f"{first}_12345678 ",
    ]
    with connection.cursor() as cursor:
        cursor.execute(  # our own column names in the SQL, the values bound
            f"SELECT v, {stripe_id_sql(column, 'v')} FROM unnest(%s::text[]) AS t(v)"  # noqa: S608
            f" UNION ALL SELECT NULL, {stripe_id_sql(column, 'NULL::text')}",
            [values],
        )
        found = dict(cursor.fetchall())
    assert found.pop(None) is None  # NULL stays unknown, as with ``~``
    assert found == {value: stripe_id_is_valid(column, value) for value in values}
    assert found[f"{first}_12345678"]
    assert not found[f"{first}_1234567"]
