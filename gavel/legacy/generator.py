"""Realistic legacy portal databases, for tests and the benchmark (never for production).

Histories follow the portal's state machine and funds flow (``states.py``), amounts follow its
commission rules (``commission.py``). Output is deterministic for a seed: the same seed and
size give byte-identical tables. Rows are bulk loaded (``LOAD DATA LOCAL INFILE`` on MySQL,
``COPY`` on PostgreSQL), so a million payments take about a minute.

Every anomaly the importer must find is injected at a configurable rate and recorded in the
returned ``Manifest``: kind -> the (table, id) rows that carry it. Nothing else in the data is
anomalous, so a test can require the importer to report exactly the manifest.
"""

# SQL here is built from identifiers in this code (tables, columns, state names), never from
# input; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import base64
import calendar
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gavel.common.money import apply_bps
from gavel.legacy.commission import amounts_compute
from gavel.legacy.connections import Dialect, LegacyDatabase, database_connect
from gavel.legacy.schema import TABLES, column_names, index_ddl, table_ddl
from gavel.legacy.states import AnomalyKind

A = AnomalyKind
START = calendar.timegm((2019, 1, 1, 0, 0, 0))
DEFAULT_NOW = datetime(2026, 7, 1, tzinfo=UTC)
DAY = 86_400

# Injected anomaly kinds and their default rate (share of payments, or of accounts for
# invalid account ids, or of extra transactions for deprecated states).
DEFAULT_RATES: dict[str, float] = {
    A.NULL_MONEY: 0.002,
    A.INVALID_STRIPE_ID: 0.002,
    A.STATE_MISMATCH: 0.002,
    A.CURRENCY_CASE: 0.002,
    A.UNKNOWN_CURRENCY: 0.001,
    A.ORPHAN_PAYMENT: 0.001,
    A.PERSON_DELETED: 0.001,
    A.PERSON_MISSING: 0.001,
    A.DUPLICATE_STRIPE_ID: 0.001,
    A.TRANSITION_OUT_OF_ORDER: 0.002,
    A.TRANSITION_NOT_ALLOWED: 0.002,
    A.DEPRECATED_STATE: 0.001,
    A.STUCK_REQUIRES_ACTION: 0.002,
}
PAYMENT_ANOMALIES = (
    A.NULL_MONEY,
    A.INVALID_STRIPE_ID,
    A.STATE_MISMATCH,
    A.CURRENCY_CASE,
    A.UNKNOWN_CURRENCY,
    A.ORPHAN_PAYMENT,
    A.PERSON_DELETED,
    A.PERSON_MISSING,
    A.DUPLICATE_STRIPE_ID,
    A.TRANSITION_OUT_OF_ORDER,
    A.TRANSITION_NOT_ALLOWED,
    A.STUCK_REQUIRES_ACTION,
)

# community id -> (currency, seller %, minimum seller fee, buyer %, minimum buyer fee) and
# the terms before the 2022 price change. Percentages are decimal on purpose.
COMMUNITIES: dict[int, tuple[str, tuple[str, int, str, int], tuple[str, int, str, int]]] = {
    1: ("EUR", ("10", 100, "0", 0), ("7.5", 150, "2.5", 50)),
    2: ("USD", ("12", 100, "0", 0), ("12.25", 100, "3", 30)),
    3: ("GBP", ("8", 50, "1", 0), ("9.5", 75, "1.5", 20)),
    4: ("JPY", ("10", 100, "0", 0), ("8.75", 150, "2", 50)),
}
TERMS_CHANGED_AT = calendar.timegm((2022, 1, 1, 0, 0, 0))
# Stripe's fee in each currency: (basis points, fixed minor units); cross-border cards pay more.
STRIPE_FEES = {"EUR": (140, 25), "USD": (290, 30), "GBP": (150, 20), "JPY": (360, 0)}
CROSS_BORDER_EXTRA_BPS = 150

# Final outcomes of a Stripe transaction and their weights.
OUTCOMES: tuple[tuple[str, float], ...] = (
    ("completed", 0.70),
    ("confirmed_unpaid_out", 0.03),
    ("paid", 0.04),
    ("preauthorized", 0.025),
    ("pending_ext", 0.005),
    ("rejected", 0.05),
    ("errored", 0.005),
    ("expired", 0.03),
    ("failed", 0.02),
    ("initiated", 0.04),
    ("canceled", 0.02),
    ("disputed", 0.005),
    ("refunded", 0.01),
    ("dismissed", 0.01),
)
# Anomalies injected into extra listings (their count: the kind's rate × clean listings).
LISTING_ANOMALIES = (
    A.CURRENCY_CASE,
    A.UNKNOWN_CURRENCY,
    A.NULL_MONEY,
    A.PERSON_DELETED,
    A.PERSON_MISSING,
)
TRANSACTION_ANOMALIES = {
    A.STATE_MISMATCH,
    A.PERSON_DELETED,
    A.PERSON_MISSING,
    A.TRANSITION_OUT_OF_ORDER,
    A.TRANSITION_NOT_ALLOWED,
}
# Obviously fake secrets: the generator never writes anything that looks like a real one.
FAKE_PASSWORD_HASH = "$2a$10$" + "FAKE" * 13 + "A"
IN_FLIGHT = {"paid", "preauthorized", "pending_ext", "initiated", "requires_action", "disputed"}
FIRST_NAMES = ("Aino", "Ben", "Chloé", "Dmitri", "Eve", "Fatima", "Goran", "Hana", "Ilse", "Jun")
LAST_NAMES = ("Virtanen", "Smith", "Müller", "García", "Rossi", "Kowalski", "Sato", "Dubois")
ITEMS = ("Vintage lamp", "Oak chair", "Signed print", "Road bike", "Camera lens", "Tea set")


@dataclass(slots=True)
class GeneratorConfig:
    payments: int = 1_000
    seed: int = 1
    rates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    now: datetime = DEFAULT_NOW
    flush_rows: int = 100_000
    # Final outcomes of clean Stripe transactions and their weights (the demo's portal uses
    # only outcomes that moved no money: its Stripe sandbox starts empty).
    outcomes: tuple[tuple[str, float], ...] = OUTCOMES


@dataclass(slots=True)
class Manifest:
    seed: int
    payments: int
    now: str
    row_counts: dict[str, int] = field(default_factory=dict)
    anomalies: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def record(self, kind: str, table: str, row_id: object) -> None:
        self.anomalies.setdefault(kind, []).append((table, str(row_id)))

    def expected(self) -> set[tuple[str, str, str]]:
        return {
            (kind, table, row_id) for kind, rows in self.anomalies.items() for table, row_id in rows
        }

    def to_json(self) -> str:
        return json.dumps(
            {
                "seed": self.seed,
                "payments": self.payments,
                "now": self.now,
                "row_counts": self.row_counts,
                "anomalies": {kind: sorted(rows) for kind, rows in sorted(self.anomalies.items())},
            },
            indent=2,
        )


def _stamp(epoch_seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch_seconds))


def _nullable(value: object) -> str:
    return "\\N" if value is None else str(value)


def _text(value: str) -> str:
    """Escape for the tab-separated bulk format both MySQL and PostgreSQL read."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


class _TableWriter:
    """Buffers tab-separated lines for one table and bulk loads them."""

    def __init__(self, connection: Any, dialect: Dialect, table: str, flush_rows: int) -> None:
        self.connection = connection
        self.dialect = dialect
        self.table = table
        self.columns = column_names(table)
        self.uuid_columns = {c.name for c in TABLES[table] if c.type_key == "uuid"}
        self.flush_rows = flush_rows
        self.lines: list[str] = []
        self.count = 0

    def add(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if not self.lines:
            return
        data = "\n".join(self.lines) + "\n"
        self.count += len(self.lines)
        self.lines = []
        if self.dialect is Dialect.POSTGRES:
            columns = ", ".join(f'"{name}"' for name in self.columns)
            statement = f'COPY "{self.table}" ({columns}) FROM STDIN'
            with self.connection.cursor() as cursor, cursor.copy(statement) as copy:
                copy.write(data)
            return
        targets = [
            f"@{name}" if name in self.uuid_columns else f"`{name}`" for name in self.columns
        ]
        assignments = ", ".join(f"`{name}` = UNHEX(@{name})" for name in sorted(self.uuid_columns))
        with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False, encoding="utf-8") as f:
            f.write(data)
            path = f.name
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(
                    f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE `{self.table}`"
                    " CHARACTER SET utf8mb3"
                    " FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'"
                    f" ({', '.join(targets)})" + (f" SET {assignments}" if assignments else "")
                )
        finally:
            os.unlink(path)


@dataclass(slots=True)
class _Person:
    id: str
    uuid_hex: str
    community_id: int
    created: int
    deleted: bool = False
    written: bool = True
    bought_with_stripe: bool = False
    is_seller: bool = False


class _Generator:
    def __init__(self, database: LegacyDatabase, config: GeneratorConfig, connection: Any) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.dialect = database.dialect
        self.connection = connection
        self.now = int(config.now.timestamp())
        self.uuid_prefix = "\\\\x" if self.dialect is Dialect.POSTGRES else ""
        self.manifest = Manifest(seed=config.seed, payments=config.payments, now=_stamp(self.now))
        self.writers = {
            table: _TableWriter(connection, self.dialect, table, config.flush_rows)
            for table in TABLES
        }
        self.people: list[_Person] = []
        self.sellers_by_community: dict[int, list[_Person]] = {}
        self.buyers_by_community: dict[int, list[_Person]] = {}
        self.listings_by_community: dict[int, list[tuple[int, str, _Person, int, int]]] = {}
        self.transaction_id = 0
        self.transition_id = 0
        self.payment_id = 0
        self.last_clean_payment: tuple[int, str, str] | None = None

    # ---- identifiers -------------------------------------------------------------------
    def person_id(self) -> str:
        return base64.urlsafe_b64encode(self.rng.randbytes(16)).decode()[:22]

    def stripe_id(self, prefix: str, length: int = 24) -> str:
        return f"{prefix}_{self.rng.getrandbits(length * 4):0{length}x}"

    def uuid_hex(self) -> str:
        return self.rng.randbytes(16).hex()

    # ---- people, listings --------------------------------------------------------------
    def make_people(self) -> None:
        count = max(40, self.config.payments // 8 + 20)
        seller_every = 6
        for index in range(count):
            community = (1, 1, 1, 1, 1, 2, 2, 2, 3, 4)[index % 10]
            person = _Person(
                id=self.person_id(),
                uuid_hex=self.uuid_hex(),
                community_id=community,
                created=self.rng.randint(START - 400 * DAY, START),
                is_seller=index % seller_every < 2,
            )
            self.people.append(person)
            pool = self.sellers_by_community if person.is_seller else self.buyers_by_community
            pool.setdefault(community, []).append(person)
        # Deleted members who never traded: soft-deleted rows that are not anomalies.
        for _ in range(max(2, count // 50)):
            self.people.append(
                _Person(self.person_id(), self.uuid_hex(), 1, START - DAY, deleted=True)
            )

    def make_listings(self) -> None:
        count = max(20, self.config.payments // 4)
        self.make_clean_listings(count)
        self.make_anomalous_listings(count)

    def make_anomalous_listings(self, first_id: int) -> None:
        """Listings the importer must quarantine or flag, after the clean ones and never sold,
        drawn from their own random stream so the rest of the data does not change."""
        rng = random.Random(self.config.seed * 7919 + 1)
        ghosts = [person for person in self.people if person.deleted]
        listing_id = first_id
        for kind in LISTING_ANOMALIES:
            rate = self.config.rates.get(kind, 0.0)
            for _ in range(max(1, round(rate * first_id)) if rate > 0 else 0):
                listing_id += 1
                author = rng.choice(self.sellers_by_community[1]).id
                price, currency = str(rng.randint(500, 90_000)), "EUR"
                if kind == A.CURRENCY_CASE:
                    currency = "eur"
                elif kind == A.UNKNOWN_CURRENCY:
                    currency = rng.choice(("XXX", "EURO", "RUR"))
                elif kind == A.NULL_MONEY:
                    price = "\\N"
                elif kind == A.PERSON_DELETED:
                    author = rng.choice(ghosts).id
                elif kind == A.PERSON_MISSING:
                    author = base64.urlsafe_b64encode(rng.randbytes(16)).decode()[:22]
                created = rng.randint(START, self.now - 200 * DAY)
                self.writers["listings"].add(
                    "\t".join(
                        (
                            str(listing_id), self.uuid_prefix + rng.randbytes(16).hex(), "1",
                            author, "0", "Odd lot", _text("Imported with a problem."), price,
                            currency, "0", "0", "unit", "0", "0", "approved", "0", "\\N",
                            _stamp(created), _stamp(created + DAY),
                        )
                    )
                )  # fmt: skip
                self.manifest.record(kind, "listings", listing_id)

    def make_clean_listings(self, count: int) -> None:
        listing_writer = self.writers["listings"]
        for listing_id in range(1, count + 1):
            community = (1, 1, 1, 1, 1, 2, 2, 2, 3, 4)[listing_id % 10]
            author = self.rng.choice(self.sellers_by_community[community])
            currency = COMMUNITIES[community][0]
            price = int(min(max(self.rng.lognormvariate(8.3, 1.0), 400), 2_000_000))
            if currency == "JPY":
                price = max(500, price // 100 * 10)
            shipping = self.rng.choice((0, 0, 450, 900, 1500)) if currency != "JPY" else 0
            created = self.rng.randint(START, self.now - 200 * DAY)
            uuid_hex = self.uuid_hex()
            self.listings_by_community.setdefault(community, []).append(
                (listing_id, uuid_hex, author, price, shipping)
            )
            title = self.rng.choice(ITEMS)
            listing_writer.add(
                "\t".join(
                    (
                        str(listing_id), self.uuid_prefix + uuid_hex, str(community), author.id,
                        str(self.rng.randint(1, 40)), title,
                        _text(f"{title} in good condition.\nPickup or shipping."),
                        str(price), currency, str(shipping), "0", "unit",
                        "1" if self.rng.random() < 0.6 else "0", "0", "approved",
                        str(self.rng.randint(0, 900)), "\\N", _stamp(created),
                        _stamp(created + self.rng.randint(0, 90 * DAY)),
                    )
                )
            )  # fmt: skip

    # ---- transactions --------------------------------------------------------------------
    def terms(self, community: int, at: int) -> tuple[str, int, str, int]:
        _, old, new = COMMUNITIES[community]
        return old if at < TERMS_CHANGED_AT else new

    def pick_trade(self) -> tuple[int, tuple[int, str, _Person, int, int], _Person]:
        community = (1, 1, 1, 1, 1, 2, 2, 2, 3, 4)[self.rng.randrange(10)]
        listing = self.rng.choice(self.listings_by_community[community])
        buyer = self.rng.choice(self.buyers_by_community[community])
        return community, listing, buyer

    def write_history(
        self, transaction_id: int, states: list[str], times: list[int], actor: str
    ) -> None:
        writer = self.writers["transaction_transitions"]
        last = len(states) - 1
        for index, (state, at) in enumerate(zip(states, times, strict=True)):
            self.transition_id += 1
            metadata = f'{{"user_id":"{actor}","executed_by_admin":false}}' if index else "\\N"
            writer.add(
                f"{self.transition_id}\t{state}\t{metadata}\t{(index + 1) * 10}\t{transaction_id}"
                f"\t{'1' if index == last else '0'}\t{_stamp(at)}\t{_stamp(at)}"
            )

    def write_transaction(
        self,
        *,
        community: int,
        listing: tuple[int, str, _Person, int, int],
        buyer_id: str,
        buyer_uuid: str,
        current_state: str,
        last_at: int,
        created: int,
        gateway: str,
        process: str,
        quantity: int,
        terms: tuple[str, int, str, int],
    ) -> int:
        self.transaction_id += 1
        listing_id, listing_uuid, seller, price, shipping = listing
        currency = COMMUNITIES[community][0]
        seller_pct, seller_min, buyer_pct, buyer_min = terms
        self.writers["transactions"].add(
            "\t".join(
                (
                    str(self.transaction_id), buyer_id, self.uuid_prefix + buyer_uuid,
                    str(listing_id), self.uuid_prefix + listing_uuid, seller.id,
                    self.uuid_prefix + seller.uuid_hex, "Item", str(community), current_state,
                    _stamp(last_at), gateway, process, seller_pct, str(seller_min), currency,
                    buyer_pct, str(buyer_min), currency, str(quantity), str(price), currency,
                    "unit", str(shipping) if shipping else "\\N",
                    "shipping" if shipping else "none", "14", "0", "0", "0",
                    _stamp(created), _stamp(last_at),
                )
            )
        )  # fmt: skip
        return self.transaction_id

    def outcome(self) -> str:
        roll = self.rng.random()
        for name, weight in self.config.outcomes:
            roll -= weight
            if roll < 0:
                return name
        return "completed"

    def path(self, outcome: str, anomaly: str | None) -> list[str]:
        three_ds = self.rng.random() < 0.15
        head = ["not_started", "initiated"]
        if outcome == "initiated":
            return head
        if outcome in {"requires_action", "expired", "failed"}:
            tail = {
                "requires_action": [],
                "expired": ["payment_intent_action_expired"],
                "failed": ["payment_intent_failed"],
            }[outcome]
            return [*head, "payment_intent_requires_action", *tail]
        if anomaly == A.TRANSITION_NOT_ALLOWED:
            return [*head, "paid", "confirmed"]
        states = [*head, *(["payment_intent_requires_action"] if three_ds else []), "preauthorized"]
        if outcome == "preauthorized":
            return states
        extended = self.rng.random() < 0.04 and outcome != "errored"  # errored only from preauth
        if outcome == "pending_ext" or extended:
            states.append("pending_ext")
        if outcome == "pending_ext":
            return states
        if outcome in {"rejected", "errored"}:
            return [*states, outcome]
        states.append("paid")
        tail = {
            "paid": [],
            "completed": ["confirmed"],
            "confirmed_unpaid_out": ["confirmed"],
            "canceled": ["canceled"],
            "disputed": ["disputed"],
            "refunded": ["disputed", "refunded"],
            "dismissed": ["disputed", "dismissed"],
        }[outcome]
        return [*states, *tail]

    def timeline(self, states: list[str], outcome: str) -> list[int]:
        in_flight = outcome in IN_FLIGHT
        if outcome == "disputed":
            start = self.rng.randint(self.now - 60 * DAY, self.now - 45 * DAY)
        elif in_flight:
            start = self.rng.randint(self.now - 12 * DAY, self.now - 10 * DAY)
        else:
            start = self.rng.randint(START, self.now - 150 * DAY)
        times = [start]
        gaps = {
            "initiated": (2, 30),
            "payment_intent_requires_action": (5, 60),
            "preauthorized": (20, 600),
            "pending_ext": (5 * DAY, 6 * DAY),
            "paid": (3600, 2 * DAY),
            "confirmed": (DAY, 14 * DAY),
            "canceled": (DAY, 10 * DAY),
            "disputed": (3 * DAY, 20 * DAY),
            "refunded": (10 * DAY, 40 * DAY),
            "dismissed": (10 * DAY, 40 * DAY),
        }
        for state in states[1:]:
            low, high = gaps.get(state, (60, 3 * DAY))
            times.append(times[-1] + self.rng.randint(low, high))
        return times

    def make_payment(self, index: int, anomaly: str | None) -> None:
        rng = self.rng
        community, listing, buyer = self.pick_trade()
        seller = listing[2]
        buyer_id, buyer_uuid = buyer.id, buyer.uuid_hex
        if anomaly == A.PERSON_DELETED:
            ghost = _Person(self.person_id(), self.uuid_hex(), community, START, deleted=True)
            self.people.append(ghost)
            buyer_id, buyer_uuid = ghost.id, ghost.uuid_hex
        elif anomaly == A.PERSON_MISSING:
            buyer_id, buyer_uuid = self.person_id(), self.uuid_hex()
        else:
            buyer.bought_with_stripe = True
        outcome = "requires_action" if anomaly == A.STUCK_REQUIRES_ACTION else self.outcome()
        if anomaly and anomaly != A.STUCK_REQUIRES_ACTION:
            outcome = "completed"
        states = self.path(outcome, anomaly)
        times = self.timeline(states, outcome)
        if anomaly == A.TRANSITION_OUT_OF_ORDER:
            times[2], times[3] = times[3], times[2] - 1
        terms = self.terms(community, times[0])
        quantity = 1 if rng.random() < 0.85 else rng.randint(2, 5)
        current_state = states[-1]
        if anomaly == A.STATE_MISMATCH:
            current_state = "paid"
        last_at = max(times)
        transfered_at: int | None = None
        if (outcome in {"completed", "dismissed"} and rng.random() < 0.97) or anomaly:
            transfered_at = last_at + rng.randint(3600, 2 * DAY)
        if outcome == "confirmed_unpaid_out" and not anomaly:
            transfered_at = None
        if transfered_at and transfered_at >= self.now:
            transfered_at = None
        if anomaly == A.ORPHAN_PAYMENT:
            self.transaction_id += 1
            transaction_id = self.transaction_id + 50_000_000
        else:
            transaction_id = self.write_transaction(
                community=community,
                listing=listing,
                buyer_id=buyer_id,
                buyer_uuid=buyer_uuid,
                current_state=current_state,
                last_at=last_at,
                created=times[0],
                gateway="stripe",
                process="preauthorize",
                quantity=quantity,
                terms=terms,
            )
            self.write_history(transaction_id, states, times, buyer_id)
        self.write_stripe_payment(
            community=community,
            transaction_id=transaction_id,
            buyer_id=buyer_id,
            seller=seller,
            listing=listing,
            quantity=quantity,
            terms=terms,
            states=states,
            times=times,
            transfered_at=transfered_at,
            anomaly=anomaly,
        )

    def write_stripe_payment(
        self,
        *,
        community: int,
        transaction_id: int,
        buyer_id: str,
        seller: _Person,
        listing: tuple[int, str, _Person, int, int],
        quantity: int,
        terms: tuple[str, int, str, int],
        states: list[str],
        times: list[int],
        transfered_at: int | None,
        anomaly: str | None,
    ) -> None:
        rng = self.rng
        self.payment_id += 1
        payment_id = self.payment_id
        currency = COMMUNITIES[community][0]
        seller_pct, seller_min, buyer_pct, buyer_min = terms
        amounts = amounts_compute(
            unit_price_cents=listing[3],
            quantity=quantity,
            shipping_price_cents=listing[4],
            commission_from_seller=Decimal(seller_pct),
            minimum_commission_cents=seller_min,
            commission_from_buyer=Decimal(buyer_pct),
            minimum_buyer_fee_cents=buyer_min,
        )
        fee_bps, fee_fixed = STRIPE_FEES[currency]
        estimated_fee = apply_bps(amounts.sum_cents, fee_bps) + fee_fixed
        final = states[-1]
        captured = "paid" in states
        intent_id = self.stripe_id("pi")
        charge_id: str | None = None
        real_fee: int | None = None
        available_on: int | None = None
        transfer_id: str | None = None
        created = times[1]
        updated = times[-1]
        if final == "initiated":
            status, intent_status = "pending", None
        elif final == "payment_intent_requires_action":
            status, intent_status = "pending", "requires_action"
        elif final == "payment_intent_action_expired":
            status, intent_status = "canceled", "canceled"
        elif final == "payment_intent_failed":
            status, intent_status = "canceled", "failed"
        elif not captured:
            charge_id = self.stripe_id("ch")
            status, intent_status = {
                "preauthorized": ("pending", "requires_capture"),
                "pending_ext": ("pending", "requires_capture"),
                "rejected": ("canceled", "canceled"),
                "errored": ("canceled", "invalid"),
            }[final]
        else:
            charge_id = self.stripe_id("ch")
            intent_status = "success"
            paid_at = times[states.index("paid")]
            extra = CROSS_BORDER_EXTRA_BPS if rng.random() < 0.1 else 0
            real_fee = apply_bps(amounts.sum_cents, fee_bps + extra) + fee_fixed
            available_on = paid_at + 7 * DAY
            status = "canceled" if final in {"canceled", "refunded"} else "paid"
            if transfered_at is not None and transfered_at < available_on:
                # Manual payouts wait for the funds to become available.
                transfered_at = available_on + rng.randint(600, DAY)
                if transfered_at >= self.now:
                    transfered_at = None
            if transfered_at is not None and final in {"confirmed", "dismissed"}:
                status = "transfered"
                transfer_id = self.stripe_id("po" if rng.random() < 0.8 else "tr")
                updated = transfered_at
            else:
                transfered_at = None
        money: dict[str, int | None] = {
            "sum_cents": amounts.sum_cents,
            "commission_cents": amounts.seller_commission_cents,
            "fee_cents": estimated_fee,
            "subtotal_cents": amounts.subtotal_cents,
            "buyer_commission_cents": amounts.buyer_commission_cents,
        }
        manifest = self.manifest
        duplicated = False
        if anomaly == A.NULL_MONEY:
            money[rng.choice(sorted(money))] = None
        elif anomaly == A.INVALID_STRIPE_ID:
            column = rng.choice(("charge", "transfer", "intent"))
            bad = rng.choice(("N/A", "", "manual payout", "ch-0001", "tok_visa"))
            if column == "charge":
                charge_id = bad if bad != "ch-0001" else intent_id
            elif column == "transfer":
                transfer_id = bad
            else:
                intent_id = bad
        elif anomaly == A.CURRENCY_CASE:
            currency = currency.lower()
        elif anomaly == A.UNKNOWN_CURRENCY:
            currency = rng.choice(("XXX", "EURO", "RUR"))
        elif anomaly == A.DUPLICATE_STRIPE_ID and self.last_clean_payment is not None:
            other_id, charge_id, intent_id = self.last_clean_payment
            manifest.record(A.DUPLICATE_STRIPE_ID, "stripe_payments", other_id)
            self.last_clean_payment = None
            duplicated = True
        if anomaly in TRANSACTION_ANOMALIES:
            manifest.record(anomaly, "transactions", transaction_id)
        elif anomaly is not None and (anomaly != A.DUPLICATE_STRIPE_ID or duplicated):
            manifest.record(anomaly, "stripe_payments", payment_id)
        if anomaly is None and status == "transfered":
            self.last_clean_payment = (payment_id, charge_id or "", intent_id)
        self.writers["stripe_payments"].add(
            "\t".join(
                (
                    str(payment_id), str(community), str(transaction_id), buyer_id, seller.id,
                    status, _nullable(money["sum_cents"]), _nullable(money["commission_cents"]),
                    currency, _nullable(charge_id), _nullable(transfer_id),
                    _nullable(money["fee_cents"]), _nullable(real_fee),
                    _nullable(money["subtotal_cents"]),
                    _stamp(transfered_at) if transfered_at else "\\N",
                    _stamp(available_on) if available_on else "\\N",
                    _stamp(created), _stamp(updated),
                    _nullable(money["buyer_commission_cents"]), intent_id,
                    _nullable(intent_status), f"{intent_id}_secret_FAKE{payment_id}",
                )
            )
        )  # fmt: skip

    def make_extra_transaction(self, kind: str) -> None:
        community, listing, buyer = self.pick_trade()
        start = self.rng.randint(START, self.now - 150 * DAY)
        if kind == "free":
            states, gateway, process = ["not_started", "free"], "none", "none"
        elif kind == "paypal":
            states = ["not_started", "initiated", "preauthorized", "paid", "confirmed"]
            gateway, process = "paypal", "preauthorize"
        elif kind == "not_started":
            states, gateway, process = ["not_started"], "stripe", "preauthorize"
        else:  # deprecated request/accept flow
            states, gateway, process = (
                ["not_started", "pending", "accepted", "confirmed"],
                "none",
                "none",
            )
        times = [start + step * 3600 for step in range(len(states))]
        transaction_id = self.write_transaction(
            community=community,
            listing=listing,
            buyer_id=buyer.id,
            buyer_uuid=buyer.uuid_hex,
            current_state=states[-1],
            last_at=times[-1],
            created=start,
            gateway=gateway,
            process=process,
            quantity=1,
            terms=self.terms(community, start),
        )
        self.write_history(transaction_id, states, times, buyer.id)
        if kind == "deprecated":
            self.manifest.record(A.DEPRECATED_STATE, "transactions", transaction_id)

    # ---- people and accounts, written last (who bought with Stripe is known by then) ------
    def write_people_and_accounts(self) -> None:
        rng = self.rng
        people_writer = self.writers["people"]
        accounts_writer = self.writers["stripe_accounts"]
        account_id = 0
        invalid_rate = self.config.rates.get(A.INVALID_STRIPE_ID, 0.0)
        invalid_budget = round(invalid_rate * len(self.people) / 4) if invalid_rate else 0
        for index, person in enumerate(self.people):
            first = FIRST_NAMES[index % len(FIRST_NAMES)]
            last = LAST_NAMES[(index // 7) % len(LAST_NAMES)]
            updated = person.created + rng.randint(0, 300 * DAY)
            email = "\\N" if person.deleted else f"{first.lower()}.{index}@example.com"
            username = f"deleted_{index}" if person.deleted else f"{first.lower()}{index}"
            people_writer.add(
                "\t".join(
                    (
                        person.id, self.uuid_prefix + person.uuid_hex, str(person.community_id),
                        _stamp(person.created), _stamp(updated), "1" if index == 0 else "0",
                        rng.choice(("en", "fi", "de", "fr")), "\\N", str(rng.randint(0, 400)),
                        "\\N", "1", username, email, FAKE_PASSWORD_HASH,
                        "\\N", str(rng.randint(0, 90)), "\\N",
                        "\\N" if person.deleted else first, "\\N" if person.deleted else last,
                        "\\N", "\\N" if person.deleted else f"+358 40 {index:07d}", "\\N", "\\N",
                        "\\N", "\\N", "1" if person.deleted else "0", "\\N",
                    )
                )
            )  # fmt: skip
            has_customer = person.bought_with_stripe
            if not person.is_seller and not has_customer:
                continue
            account_id += 1
            seller_id = self.stripe_id("acct", 16) if person.is_seller else None
            bank_id = self.stripe_id("ba") if person.is_seller else None
            customer_id = self.stripe_id("cus", 14) if has_customer else None
            if invalid_budget and rng.random() < 0.25:
                invalid_budget -= 1
                if seller_id is not None:
                    seller_id = rng.choice(("acct-test", "TODO", "sk_live_FAKE"))
                else:
                    customer_id = rng.choice(("customer_1", "N/A"))
                self.manifest.record(A.INVALID_STRIPE_ID, "stripe_accounts", account_id)
            accounts_writer.add(
                "\t".join(
                    (
                        str(account_id), person.id, str(person.community_id), _nullable(seller_id),
                        _nullable(bank_id), _nullable(customer_id), _stamp(person.created + DAY),
                        _stamp(updated), "2019-02-19", "\\N",
                        "FI" if person.community_id == 1 else "US",
                    )
                )
            )  # fmt: skip

    def write_payment_settings(self) -> None:
        writer = self.writers["payment_settings"]
        row_id = 0
        for community, (currency, _, terms) in COMMUNITIES.items():
            seller_pct, seller_min, buyer_pct, buyer_min = terms
            for gateway in ("stripe", "paypal"):
                row_id += 1
                writer.add(
                    "\t".join(
                        (
                            str(row_id), "1" if gateway == "stripe" else "0", str(community),
                            gateway, "preauthorize", seller_pct, "100", currency, str(seller_min),
                            currency, "14", _stamp(START), _stamp(TERMS_CHANGED_AT),
                            "ca_FAKE", "sk_test_FAKE_NOT_A_KEY", "pk_test_FAKE_NOT_A_KEY", "1",
                            "\\N", "US", buyer_pct, str(buyer_min), currency, "0",
                        )
                    )
                )  # fmt: skip

    # ---- the whole database -------------------------------------------------------------
    def run(self, progress: Callable[[int], None] | None) -> Manifest:
        rng = self.rng
        total = self.config.payments
        rates = self.config.rates
        assignments: dict[int, str] = {}
        free_indexes = list(range(1, total + 1))
        rng.shuffle(free_indexes)
        for kind in PAYMENT_ANOMALIES:
            rate = rates.get(kind, 0.0)
            count = max(1, round(rate * total)) if rate > 0 else 0
            for _ in range(min(count, len(free_indexes) // 2)):
                assignments[free_indexes.pop()] = kind
        deprecated_rate = rates.get(A.DEPRECATED_STATE, 0.0)
        deprecated_count = max(1, round(deprecated_rate * total)) if deprecated_rate else 0
        deprecated_at = set(rng.sample(range(1, total + 1), min(deprecated_count, total)))
        self.make_people()
        self.make_listings()
        for index in range(1, total + 1):
            self.make_payment(index, assignments.get(index))
            if rng.random() < 0.06:
                self.make_extra_transaction(rng.choice(("free", "paypal", "not_started")))
            if index in deprecated_at:
                self.make_extra_transaction("deprecated")
            if progress is not None and index % 10_000 == 0:
                progress(10_000)
        self.write_people_and_accounts()
        self.write_payment_settings()
        for table, writer in self.writers.items():
            writer.flush()
            self.manifest.row_counts[table] = writer.count
        return self.manifest


def legacy_generate(
    *,
    database: LegacyDatabase,
    config: GeneratorConfig,
    progress: Callable[[int], None] | None = None,
) -> Manifest:
    """Create the legacy tables in ``database`` (dropping old ones) and fill them."""
    connection = database_connect(database, autocommit=True)
    try:
        with connection.cursor() as cursor:
            for table in TABLES:
                quoted = f"`{table}`" if database.dialect is Dialect.MYSQL else f'"{table}"'
                cursor.execute(f"DROP TABLE IF EXISTS {quoted}")
                cursor.execute(table_ddl(table, database.dialect))
        manifest = _Generator(database, config, connection).run(progress)
        with connection.cursor() as cursor:
            for table in TABLES:
                for statement in index_ddl(table, database.dialect):
                    cursor.execute(statement)
            if database.dialect is Dialect.POSTGRES:
                # Rows were written with explicit ids: move each bigserial past them, so a
                # later insert without an id (the portal going on, legacy_advance) gets a new one.
                for table, columns in TABLES.items():
                    if any(column.type_key == "pk" for column in columns):
                        cursor.execute(
                            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'),"
                            f' COALESCE((SELECT MAX(id) FROM "{table}"), 0) + 1, false)'
                        )
                cursor.execute("ANALYZE")
    finally:
        connection.close()
    return manifest


def legacy_advance(*, database: LegacyDatabase, at: datetime) -> dict[str, list[int]]:
    """Move the portal on, as it would between a rehearsal and the cutover (delta tests):
    pay out confirmed payments still waiting, and capture preauthorized clean transactions.
    Returns the payment ids changed per step."""
    connection = database_connect(database, autocommit=False)
    stamp = _stamp(int(at.timestamp()))
    true, false = ("1", "0") if database.dialect is Dialect.MYSQL else ("true", "false")
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT p.id FROM stripe_payments p JOIN transactions t ON t.id = p.transaction_id"
                " WHERE p.status = 'paid' AND t.current_state = 'confirmed'"
                " AND p.sum_cents IS NOT NULL ORDER BY p.id"
            )
            payouts = [int(row[0]) for row in cursor.fetchall()]
            for payment_id in payouts:
                cursor.execute(
                    "UPDATE stripe_payments SET status = 'transfered', stripe_transfer_id = %s,"
                    " transfered_at = %s, updated_at = %s WHERE id = %s",
                    [f"po_advance{payment_id:014d}", stamp, stamp, payment_id],
                )
            cursor.execute(
                "SELECT p.id, t.id FROM stripe_payments p JOIN transactions t"
                " ON t.id = p.transaction_id WHERE t.current_state = 'preauthorized'"
                " AND p.status = 'pending' ORDER BY p.id"
            )
            captures = [(int(row[0]), int(row[1])) for row in cursor.fetchall()]
            for payment_id, transaction_id in captures:
                cursor.execute(
                    f"UPDATE transaction_transitions SET most_recent = {false}, updated_at = %s"
                    " WHERE transaction_id = %s",
                    [stamp, transaction_id],
                )
                cursor.execute(
                    "SELECT MAX(sort_key) FROM transaction_transitions WHERE transaction_id = %s",
                    [transaction_id],
                )
                (sort_key,) = cursor.fetchone()
                cursor.execute(
                    "INSERT INTO transaction_transitions (to_state, metadata, sort_key,"
                    f" transaction_id, most_recent, created_at, updated_at) VALUES ('paid', NULL,"
                    f" %s, %s, {true}, %s, %s)",
                    [int(sort_key) + 10, transaction_id, stamp, stamp],
                )
                cursor.execute(
                    "UPDATE transactions SET current_state = 'paid', last_transition_at = %s,"
                    " updated_at = %s WHERE id = %s",
                    [stamp, stamp, transaction_id],
                )
                cursor.execute(
                    "UPDATE stripe_payments SET status = 'paid',"
                    " stripe_payment_intent_status = 'success', real_fee_cents = fee_cents,"
                    " available_on = %s, updated_at = %s WHERE id = %s",
                    [stamp, stamp, payment_id],
                )
        connection.commit()
    finally:
        connection.close()
    return {"payouts": payouts, "captures": [payment_id for payment_id, _ in captures]}
