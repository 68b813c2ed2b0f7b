"""Stage one: read the legacy database into typed records, and find what is wrong in each row.

The reader selects only the columns Gavel keeps (never passwords, tokens, API keys or client
secrets), in keyset order (``WHERE key > last ORDER BY key LIMIT n``), so every page ends at
a key that a checkpoint can store and a resumed run can continue from. Records are
``NamedTuple``: typed like a dataclass, but a tuple, so ``COPY`` takes them as they are.
"""

# SQL here is built from identifiers in this code (tables, columns, state names), never from
# input; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import re
import struct
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from gavel.common.money import SUPPORTED_CURRENCIES
from gavel.legacy.connections import Dialect, LegacyDatabase, database_connect
from gavel.legacy.schema import TABLES
from gavel.legacy.states import AnomalyKind


class PersonRecord(NamedTuple):
    legacy_id: str
    uuid: uuid.UUID
    community_id: int
    username: str
    email: str | None
    given_name: str | None
    family_name: str | None
    display_name: str | None
    phone_number: str | None
    is_admin: bool
    locale: str | None
    is_deleted: bool
    legacy_created_at: datetime
    legacy_updated_at: datetime


class StripeAccountRecord(NamedTuple):
    legacy_id: int
    person_legacy_id: str | None
    community_id: int | None
    stripe_seller_id: str | None
    stripe_bank_id: str | None
    stripe_customer_id: str | None
    api_version: str | None
    legacy_created_at: datetime
    legacy_updated_at: datetime


class ListingRecord(NamedTuple):
    legacy_id: int
    uuid: uuid.UUID
    community_id: int
    author_legacy_id: str | None
    title: str | None
    description: str | None
    price_cents: int | None
    currency: str | None
    shipping_price_cents: int | None
    is_open: bool | None
    is_deleted: bool | None
    state: str | None
    legacy_created_at: datetime
    legacy_updated_at: datetime


class TransactionRecord(NamedTuple):
    legacy_id: int
    starter_legacy_id: str
    listing_legacy_id: int
    listing_author_legacy_id: str
    community_id: int
    current_state: str | None
    last_transition_at: datetime | None
    payment_gateway: str
    payment_process: str | None
    commission_from_seller: Decimal | None
    minimum_commission_cents: int | None
    minimum_commission_currency: str | None
    commission_from_buyer: Decimal | None
    minimum_buyer_fee_cents: int | None
    minimum_buyer_fee_currency: str | None
    listing_quantity: int | None
    unit_price_cents: int | None
    unit_price_currency: str | None
    shipping_price_cents: int | None
    automatic_confirmation_after_days: int
    is_deleted: bool | None
    legacy_created_at: datetime
    legacy_updated_at: datetime


class TransitionRecord(NamedTuple):
    legacy_id: int
    transaction_legacy_id: int | None
    to_state: str | None
    metadata: str | None
    sort_key: int | None
    is_most_recent: bool | None
    legacy_created_at: datetime
    legacy_updated_at: datetime


class PaymentRecord(NamedTuple):
    legacy_id: int
    transaction_legacy_id: int | None
    payer_legacy_id: str | None
    receiver_legacy_id: str | None
    community_id: int | None
    status: str | None
    sum_cents: int | None
    subtotal_cents: int | None
    commission_cents: int | None
    buyer_commission_cents: int | None
    fee_cents: int | None
    real_fee_cents: int | None
    currency: str | None
    stripe_charge_id: str | None
    stripe_payment_intent_id: str | None
    stripe_payment_intent_status: str | None
    stripe_transfer_id: str | None
    transfered_at: datetime | None
    available_on: datetime | None
    legacy_created_at: datetime
    legacy_updated_at: datetime


class PaymentSettingRecord(NamedTuple):
    legacy_id: int
    is_active: bool
    community_id: int
    payment_gateway: str | None
    payment_process: str | None
    commission_from_seller: Decimal | None
    minimum_transaction_fee_cents: int | None
    minimum_transaction_fee_currency: str | None
    commission_from_buyer: Decimal | None
    minimum_buyer_transaction_fee_cents: int | None
    minimum_buyer_transaction_fee_currency: str | None
    confirmation_after_days: int
    legacy_created_at: datetime
    legacy_updated_at: datetime


Record = (
    PersonRecord
    | StripeAccountRecord
    | ListingRecord
    | TransactionRecord
    | TransitionRecord
    | PaymentRecord
    | PaymentSettingRecord
)


class Anomaly(NamedTuple):
    kind: AnomalyKind
    legacy_table: str
    legacy_id: str
    details: dict[str, Any]


def _as_uuid(value: Any) -> uuid.UUID:
    return uuid.UUID(bytes=bytes(value))


def _as_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


@dataclass(frozen=True, slots=True)
class TableSpec:
    """How to read one legacy table: the columns (in record order) and their conversions."""

    table: str
    record: type[Any]
    columns: tuple[str, ...]
    key_is_text: bool = False
    converters: tuple[tuple[int, Callable[[Any], Any]], ...] = ()
    uuid_columns: tuple[str, ...] = ()

    def to_record(self, row: Sequence[Any]) -> Any:
        if not self.converters:
            return self.record._make(row)
        values = list(row)
        for index, convert in self.converters:
            values[index] = convert(values[index])
        return self.record._make(values)


def _spec(
    table: str,
    record: type[Any],
    columns: tuple[str, ...],
    *,
    key_is_text: bool = False,
    uuids: tuple[str, ...] = (),
    booleans: tuple[str, ...] = (),
) -> TableSpec:
    assert len(columns) == len(record._fields), table
    converters: list[tuple[int, Callable[[Any], Any]]] = [
        (columns.index(name), _as_uuid) for name in uuids
    ]
    converters += [(columns.index(name), _as_bool) for name in booleans]
    return TableSpec(table, record, columns, key_is_text, tuple(converters), uuids)


def _columns(names: str, *, timestamps: bool = False) -> tuple[str, ...]:
    return tuple(names.split()) + (("created_at", "updated_at") if timestamps else ())


# Read order: people and accounts before what references them (for progress, not for
# correctness: cross-table checks run once every table is staged).
SPECS: tuple[TableSpec, ...] = (
    _spec(
        "people",
        PersonRecord,
        _columns(
            "id uuid community_id username email given_name family_name "
            "display_name phone_number is_admin locale deleted",
            timestamps=True,
        ),
        key_is_text=True,
        uuids=("uuid",),
        booleans=("is_admin", "deleted"),
    ),
    _spec(
        "stripe_accounts",
        StripeAccountRecord,
        _columns(
            "id person_id community_id stripe_seller_id stripe_bank_id "
            "stripe_customer_id api_version",
            timestamps=True,
        ),
    ),
    _spec(
        "payment_settings",
        PaymentSettingRecord,
        _columns(
            "id active community_id payment_gateway payment_process "
            "commission_from_seller minimum_transaction_fee_cents "
            "minimum_transaction_fee_currency commission_from_buyer "
            "minimum_buyer_transaction_fee_cents "
            "minimum_buyer_transaction_fee_currency confirmation_after_days",
            timestamps=True,
        ),
        booleans=("active",),
    ),
    _spec(
        "listings",
        ListingRecord,
        _columns(
            "id uuid community_id author_id title description price_cents currency "
            "shipping_price_cents open deleted state",
            timestamps=True,
        ),
        uuids=("uuid",),
        booleans=("open", "deleted"),
    ),
    _spec(
        "transactions",
        TransactionRecord,
        _columns(
            "id starter_id listing_id listing_author_id community_id current_state "
            "last_transition_at payment_gateway payment_process "
            "commission_from_seller minimum_commission_cents "
            "minimum_commission_currency commission_from_buyer "
            "minimum_buyer_fee_cents minimum_buyer_fee_currency listing_quantity "
            "unit_price_cents unit_price_currency shipping_price_cents "
            "automatic_confirmation_after_days deleted",
            timestamps=True,
        ),
        booleans=("deleted",),
    ),
    _spec(
        "transaction_transitions",
        TransitionRecord,
        _columns("id transaction_id to_state metadata sort_key most_recent", timestamps=True),
        booleans=("most_recent",),
    ),
    _spec(
        "stripe_payments",
        PaymentRecord,
        _columns(
            "id transaction_id payer_id receiver_id community_id status sum_cents "
            "subtotal_cents commission_cents buyer_commission_cents fee_cents "
            "real_fee_cents currency stripe_charge_id stripe_payment_intent_id "
            "stripe_payment_intent_status stripe_transfer_id transfered_at "
            "available_on",
            timestamps=True,
        ),
    ),
)
SPECS_BY_TABLE = {spec.table: spec for spec in SPECS}
RELAY_ROWS = 1000  # rows of a PostgreSQL source passed on per write (``copy_page``)


class LegacySource:
    """A read-only session on the legacy database."""

    def __init__(self, database: LegacyDatabase) -> None:
        self.database = database
        self.dialect = database.dialect
        self.connection = database_connect(database, autocommit=True)

    def close(self) -> None:
        self.connection.close()

    def encoding(self) -> str | None:
        """The server's character encoding (None for MySQL, whose pages are always text)."""
        if self.dialect is Dialect.MYSQL:
            return None
        with self.connection.cursor() as cursor:
            cursor.execute("SHOW server_encoding")
            (encoding,) = cursor.fetchone()
        return str(encoding)

    def __enter__(self) -> LegacySource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def quote(self, name: str) -> str:
        return f"`{name}`" if self.dialect is Dialect.MYSQL else f'"{name}"'

    def clock(self) -> datetime:
        """The legacy server's current UTC time (the next delta starts from it)."""
        query = (
            "SELECT UTC_TIMESTAMP()"
            if self.dialect is Dialect.MYSQL
            else "SELECT (now() AT TIME ZONE 'UTC')"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(query)
            (value,) = cursor.fetchone()
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]

    def fetch_page(
        self, spec: TableSpec, *, after: str | int, limit: int, since: datetime | None
    ) -> list[Any]:
        columns = ", ".join(self.quote(column) for column in spec.columns)
        where = f"{self.quote('id')} > %s"
        params: list[Any] = [after]
        if since is not None:
            where += f" AND {self.quote('updated_at')} >= %s"
            params.append(since.astimezone(UTC).replace(tzinfo=None))
        query = (
            f"SELECT {columns} FROM {self.quote(spec.table)} WHERE {where}"
            f" ORDER BY {self.quote('id')} LIMIT {int(limit)}"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(query, params)
            rows = cursor.fetchall()
        return [spec.to_record(row) for row in rows]

    def pages(
        self,
        spec: TableSpec,
        *,
        after: str | int,
        limit: int,
        since: datetime | None = None,
    ) -> Iterator[list[Any]]:
        """Pages of records in key order, starting after ``after``. The next page is read in
        a thread while the caller writes the current one (the reader's parsing overlaps the
        writer's database time)."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="legacy-reader") as pool:
            pending = pool.submit(self.fetch_page, spec, after=after, limit=limit, since=since)
            while True:
                page = pending.result()
                if not page:
                    return
                full = len(page) == limit
                if full:
                    pending = pool.submit(
                        self.fetch_page, spec, after=page[-1][0], limit=limit, since=since
                    )
                yield page
                if not full:
                    return

    def copy_page(
        self,
        spec: TableSpec,
        *,
        after: str | int,
        limit: int,
        since: datetime | None,
        run_id: int,
        write: Callable[[bytes], None],
        binary_types: Sequence[str] | None = None,
    ) -> tuple[int, str | None]:
        """Send one keyset page to ``write`` as PostgreSQL ``COPY`` text, with ``run_id`` as a
        last column, without converting a value in Python: a PostgreSQL source's own ``COPY …
        TO STDOUT``; a MySQL source formats each row as one line itself (``CONCAT_WS``), so
        PyMySQL reads one string per row instead of typed columns. Uuids travel as hex, which
        a uuid column reads. Returns the rows sent and the page's last key (None: empty).

        ``binary_types`` (a PostgreSQL source only): the SQL types of the columns that read
        the page, in ``spec.columns`` order. The page is then sent in COPY's binary format,
        each value cast to its type (no typmod: the reading column applies its own, as it
        does to text): nothing to print as text and parse again, about a fifth less CPU for
        the two servers. Both databases must use the same encoding (``encoding``)."""
        if self.dialect is Dialect.MYSQL:
            return self._mysql_copy_page(
                spec, after=after, limit=limit, since=since, run_id=run_id, write=write
            )
        values = [
            f"encode({self.quote(column)}, 'hex')"
            if column in spec.uuid_columns
            else self.quote(column)
            for column in spec.columns
        ]
        if binary_types is not None:
            values = [
                f"{value}::{_without_typmod(sql_type)}"
                for value, sql_type in zip(values, binary_types, strict=True)
            ]
        columns = ", ".join(values)
        where = f"{self.quote('id')} > %s"
        params: list[Any] = [after]
        if since is not None:
            where += f" AND {self.quote('updated_at')} >= %s"
            params.append(since.astimezone(UTC).replace(tzinfo=None))
        query = (
            f"COPY (SELECT {columns}, {int(run_id)}::bigint FROM {self.quote(spec.table)}"
            f" WHERE {where} ORDER BY {self.quote('id')} LIMIT {int(limit)}) TO STDOUT"
            + (" (FORMAT binary)" if binary_types is not None else "")
        )
        # "Messages sent from the backend will always correspond to single data rows"
        # (PostgreSQL's protocol, CopyData): a row per message, the last one holding the last
        # key. In the binary format the file header goes with the first row and the trailer
        # is a message of its own. This loop runs once per row, so it only collects; the rows
        # are written RELAY_ROWS at a time (a write per row was half of the relay's time).
        messages = 0
        before_last: bytes | memoryview = b""
        last: bytes | memoryview = b""
        pending: list[bytes | memoryview] = []
        with self.connection.cursor() as cursor, cursor.copy(query, params) as copy:
            for chunk in copy:  # a view of its own buffer: kept as it is, not copied
                before_last, last = last, chunk
                pending.append(chunk)
                if len(pending) == RELAY_ROWS:
                    write(b"".join(pending))
                    messages += RELAY_ROWS
                    pending.clear()
        if pending:
            write(b"".join(pending))
            messages += len(pending)
        if binary_types is None:
            if not messages:
                return 0, None
            return messages, _copy_text_field(bytes(last).split(b"\t", 1)[0].rstrip(b"\n"))
        rows = messages - 1  # the trailer
        if rows <= 0:
            return 0, None
        return rows, _copy_binary_key(bytes(before_last), is_text=spec.key_is_text)

    def _mysql_copy_page(
        self,
        spec: TableSpec,
        *,
        after: str | int,
        limit: int,
        since: datetime | None,
        run_id: int,
        write: Callable[[bytes], None],
    ) -> tuple[int, str | None]:
        types = {column.name: column.type_key for column in TABLES[spec.table]}
        fields = ", ".join(_mysql_copy_text(column, types[column]) for column in spec.columns)
        where = "`id` > %s"
        params: list[Any] = [after]
        if since is not None:
            where += " AND `updated_at` >= %s"
            params.append(since.astimezone(UTC).replace(tzinfo=None))
        query = (
            f"SELECT `id`, CONCAT_WS('\\t', {fields}, '{int(run_id)}') FROM `{spec.table}`"
            f" WHERE {where} ORDER BY `id` LIMIT {int(limit)}"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(query, params)
            rows = cursor.fetchall()
        if not rows:
            return 0, None
        write(("\n".join(line for _, line in rows) + "\n").encode())
        return len(rows), str(rows[-1][0])

    def count(self, table: str, *, since: datetime | None = None) -> int:
        query = f"SELECT COUNT(*) FROM {self.quote(table)}"
        params: list[Any] = []
        if since is not None:
            query += f" WHERE {self.quote('updated_at')} >= %s"
            params.append(since.astimezone(UTC).replace(tzinfo=None))
        with self.connection.cursor() as cursor:
            cursor.execute(query, params)
            (value,) = cursor.fetchone()
        return int(value)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query written with ``%s`` placeholders (verification)."""
        with self.connection.cursor() as cursor:
            cursor.execute(sql, list(params))
            return list(cursor.fetchall())


def _mysql_copy_text(column: str, type_key: str) -> str:
    """A MySQL expression giving one column as a field of PostgreSQL's COPY text format:
    ``\\N`` for NULL, backslash, tab, newline and carriage return escaped in text, uuids as hex,
    numbers, booleans (0/1) and datetimes (``YYYY-MM-DD hh:mm:ss``) as MySQL prints them."""
    quoted = f"`{column}`"
    if type_key == "uuid":
        value = f"LOWER(HEX({quoted}))"
    elif type_key in {"str", "text", "person", "person_pk"}:
        value = (
            rf"REPLACE(REPLACE(REPLACE(REPLACE({quoted}, '\\', '\\\\'), '\t', '\\t'),"
            rf" '\n', '\\n'), '\r', '\\r')"
        )
    else:
        value = f"CAST({quoted} AS CHAR)"
    return rf"IFNULL({value}, '\\N')"


_COPY_ESCAPES = {b"b": "\b", b"f": "\f", b"n": "\n", b"r": "\r", b"t": "\t", b"v": "\v"}


_BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def _copy_binary_key(row: bytes, *, is_text: bool) -> str:
    """The first field (the key) of one row of PostgreSQL's binary COPY format, as text; the
    file header in front of it (the first row's message) is skipped."""
    if row.startswith(_BINARY_SIGNATURE):
        (extension,) = struct.unpack_from(">i", row, len(_BINARY_SIGNATURE) + 4)
        row = row[len(_BINARY_SIGNATURE) + 8 + extension :]
    _fields, length = struct.unpack_from(">hi", row)
    value = row[6 : 6 + length]
    return value.decode() if is_text else str(struct.unpack(">q", value)[0])


def _without_typmod(sql_type: str) -> str:
    """``varchar(22)`` -> ``varchar``: a cast to it would cut a longer value short."""
    return re.sub(r"\(.*\)", "", sql_type).strip()


def _copy_text_field(raw: bytes) -> str:
    """One field of PostgreSQL's COPY text format, unescaped (keys are ids: plain text)."""
    text = re.sub(
        rb"\\(.)",
        lambda match: _COPY_ESCAPES.get(match.group(1), match.group(1).decode()).encode(),
        raw,
    )
    return text.decode()


def key_initial(spec: TableSpec) -> str | int:
    return "" if spec.key_is_text else 0


# ---- row-local anomaly checks --------------------------------------------------------------

STRIPE_ID_PATTERNS = {
    "stripe_charge_id": re.compile(r"^(ch|py)_[A-Za-z0-9]{8,}$"),
    "stripe_payment_intent_id": re.compile(r"^pi_[A-Za-z0-9]{8,}$"),
    "stripe_transfer_id": re.compile(r"^(po|tr)_[A-Za-z0-9]{8,}$"),
    "stripe_seller_id": re.compile(r"^acct_[A-Za-z0-9]{8,}$"),
    "stripe_customer_id": re.compile(r"^cus_[A-Za-z0-9]{8,}$"),
    "stripe_bank_id": re.compile(r"^(ba|card)_[A-Za-z0-9]{8,}$"),
}
# The characters after the prefix: at least this many, letters and digits only.
STRIPE_ID_MIN_TAIL = 8
_TAIL = f"[A-Za-z0-9]{{{STRIPE_ID_MIN_TAIL},}}$"


def stripe_id_sql(column: str, expression: str | None = None) -> str:
    """SQL that is true where ``expression`` (the column by default) is a valid id for
    ``column``: ``STRIPE_ID_PATTERNS``'s test, NULL for NULL. Written as the pattern with an
    open repeat and a length test: PostgreSQL's regex engine took twice as long with the
    bounded repeat ``{8,}`` (1.7 µs against 0.8 µs an id, on a million ids), and the import
    tests millions of ids."""
    pattern = STRIPE_ID_PATTERNS[column].pattern
    assert pattern.endswith(_TAIL), pattern
    value = expression or column
    open_pattern = pattern.removesuffix(_TAIL) + "[A-Za-z0-9]+$"
    # Every prefix is letters: the first underscore ends it.
    return (
        f"({value} ~ '{open_pattern}'"
        f" AND char_length({value}) - strpos({value}, '_') >= {STRIPE_ID_MIN_TAIL})"
    )


PAYMENT_MONEY_COLUMNS = (
    "sum_cents",
    "subtotal_cents",
    "commission_cents",
    "buyer_commission_cents",
    "fee_cents",
)
# Amounts the portal never stores below zero (a refund is a state, not a negative payment).
PAYMENT_NONNEGATIVE_COLUMNS = (*PAYMENT_MONEY_COLUMNS, "real_fee_cents")
PAYMENT_STRIPE_IDS = ("stripe_charge_id", "stripe_payment_intent_id", "stripe_transfer_id")
ACCOUNT_STRIPE_IDS = ("stripe_seller_id", "stripe_bank_id", "stripe_customer_id")


def stripe_id_is_valid(column: str, value: str) -> bool:
    # fullmatch: a trailing newline is not part of an id (as in PostgreSQL's ``~``, which the
    # SQL checks use; ``re.match``'s ``$`` would let one through).
    return STRIPE_ID_PATTERNS[column].fullmatch(value) is not None


# What a currency is stripped of before it is compared (the SQL checks strip the same).
CURRENCY_WHITESPACE = " \t\n\r\f\v"


def _currency_anomaly(
    table: str, legacy_id: object, column: str, value: str | None, *, is_required: bool = False
) -> Anomaly | None:
    """``unknown_currency`` for a currency Gavel does not support (or none, when
    ``is_required``: a payment's money has to be in one), ``currency_case`` for a supported
    one not written in upper case."""
    if value is None:
        if not is_required:
            return None
        return Anomaly(
            AnomalyKind.UNKNOWN_CURRENCY, table, str(legacy_id), {"column": column, "value": None}
        )
    upper = value.strip(CURRENCY_WHITESPACE).upper()
    if upper not in SUPPORTED_CURRENCIES:
        return Anomaly(
            AnomalyKind.UNKNOWN_CURRENCY, table, str(legacy_id), {"column": column, "value": value}
        )
    if upper != value:
        return Anomaly(
            AnomalyKind.CURRENCY_CASE, table, str(legacy_id), {"column": column, "value": value}
        )
    return None


def _stripe_id_anomalies(
    table: str, legacy_id: object, record: Any, columns: tuple[str, ...]
) -> list[Anomaly]:
    invalid = {
        column: getattr(record, column)
        for column in columns
        if getattr(record, column) is not None
        and not stripe_id_is_valid(column, getattr(record, column))
    }
    if not invalid:
        return []
    return [Anomaly(AnomalyKind.INVALID_STRIPE_ID, table, str(legacy_id), {"values": invalid})]


def payment_anomalies(record: PaymentRecord) -> list[Anomaly]:
    found: list[Anomaly] = []
    nulls = [column for column in PAYMENT_MONEY_COLUMNS if getattr(record, column) is None]
    if nulls:
        found.append(
            Anomaly(
                AnomalyKind.NULL_MONEY, "stripe_payments", str(record.legacy_id), {"columns": nulls}
            )
        )
    negatives = [
        column
        for column in PAYMENT_NONNEGATIVE_COLUMNS
        if (value := getattr(record, column)) is not None and value < 0
    ]
    if negatives:
        found.append(
            Anomaly(
                AnomalyKind.NEGATIVE_MONEY,
                "stripe_payments",
                str(record.legacy_id),
                {"columns": negatives},
            )
        )
    found += _stripe_id_anomalies("stripe_payments", record.legacy_id, record, PAYMENT_STRIPE_IDS)
    currency = _currency_anomaly(
        "stripe_payments", record.legacy_id, "currency", record.currency, is_required=True
    )
    if currency is not None:
        found.append(currency)
    return found


def account_anomalies(record: StripeAccountRecord) -> list[Anomaly]:
    return _stripe_id_anomalies("stripe_accounts", record.legacy_id, record, ACCOUNT_STRIPE_IDS)


TRANSACTION_CURRENCIES = (
    "unit_price_currency",
    "minimum_commission_currency",
    "minimum_buyer_fee_currency",
)
# The money of a transaction's terms: what the portal's rules price an unpaid order from.
TRANSACTION_MONEY_COLUMNS = (
    "unit_price_cents",
    "shipping_price_cents",
    "minimum_commission_cents",
    "minimum_buyer_fee_cents",
)
# Each minimum fee and the currency it is stored in.
TRANSACTION_MINIMUMS = (
    ("minimum_commission_cents", "minimum_commission_currency"),
    ("minimum_buyer_fee_cents", "minimum_buyer_fee_currency"),
)
STRIPE_GATEWAY = "stripe"


def _currency_normal(value: str) -> str:
    return value.strip(CURRENCY_WHITESPACE).upper()


def transaction_invalid_terms(record: TransactionRecord) -> list[str]:
    """The columns of a transaction's terms that the portal's rules cannot price it by: a
    quantity below one (none counts as the schema's default, one), a negative commission
    percentage, a minimum fee (not zero) stored in another supported currency than the price's, or a
    price of zero with no shipping (nothing to charge)."""
    invalid = []
    if record.listing_quantity is not None and record.listing_quantity < 1:
        invalid.append("listing_quantity")
    for column in ("commission_from_seller", "commission_from_buyer"):
        if (percent := getattr(record, column)) is not None and percent < 0:
            invalid.append(column)
    price = record.unit_price_currency
    price_currency = _currency_normal(price) if price is not None else None
    for amount_column, currency_column in TRANSACTION_MINIMUMS:
        value = getattr(record, currency_column)
        currency = _currency_normal(value) if value is not None else None
        # Both supported (an unknown one is ``unknown_currency`` already) and not the same.
        if (
            getattr(record, amount_column)
            and currency in SUPPORTED_CURRENCIES
            and price_currency in SUPPORTED_CURRENCIES
            and currency != price_currency
        ):
            invalid.append(currency_column)
    if record.unit_price_cents == 0 and not record.shipping_price_cents:
        invalid.append("unit_price_cents")
    return invalid


def transaction_anomalies(record: TransactionRecord) -> list[Anomaly]:
    """One anomaly of a kind per transaction. Currencies: the first column that has it (in
    ``TRANSACTION_CURRENCIES`` order), with the others that have it too under ``also``; a
    Stripe transaction's price needs one. A Stripe transaction's terms are checked too: its
    price (``null_money``), money below zero (``negative_money``) and the rest of what the
    portal's rules need (``invalid_terms``). Other gateways' terms are never used."""
    is_stripe = record.payment_gateway == STRIPE_GATEWAY
    by_kind: dict[AnomalyKind, list[Anomaly]] = {}
    for column in TRANSACTION_CURRENCIES:
        anomaly = _currency_anomaly(
            "transactions",
            record.legacy_id,
            column,
            getattr(record, column),
            is_required=is_stripe and column == "unit_price_currency",
        )
        if anomaly is not None:
            by_kind.setdefault(anomaly.kind, []).append(anomaly)
    found = []
    for first, *others in by_kind.values():
        if others:
            first = first._replace(
                details={**first.details, "also": [other.details for other in others]}
            )
        found.append(first)
    if not is_stripe:
        return found
    legacy_id = str(record.legacy_id)
    if record.unit_price_cents is None:
        found.append(
            Anomaly(
                AnomalyKind.NULL_MONEY, "transactions", legacy_id, {"columns": ["unit_price_cents"]}
            )
        )
    negatives = [
        column
        for column in TRANSACTION_MONEY_COLUMNS
        if (value := getattr(record, column)) is not None and value < 0
    ]
    if negatives:
        found.append(
            Anomaly(AnomalyKind.NEGATIVE_MONEY, "transactions", legacy_id, {"columns": negatives})
        )
    invalid = transaction_invalid_terms(record)
    if invalid:
        found.append(
            Anomaly(AnomalyKind.INVALID_TERMS, "transactions", legacy_id, {"columns": invalid})
        )
    return found


ROW_CHECKS: dict[str, Callable[[Any], list[Anomaly]]] = {
    "stripe_payments": payment_anomalies,
    "stripe_accounts": account_anomalies,
    "transactions": transaction_anomalies,
}


def page_anomalies(table: str, records: Sequence[Any]) -> list[Anomaly]:
    check = ROW_CHECKS.get(table)
    if check is None:
        return []
    found: list[Anomaly] = []
    for record in records:
        found += check(record)
    return found
