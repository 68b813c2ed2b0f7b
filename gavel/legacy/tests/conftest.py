"""Legacy sources for the tests: small generated portals on real MariaDB and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.db import connection

from gavel.legacy.connections import (
    LegacyDatabase,
    database_connect,
    database_drop,
    database_parse,
    database_recreate,
)
from gavel.legacy.generator import GeneratorConfig, Manifest, legacy_generate
from gavel.legacy.indexes import indexes_restore
from gavel.legacy.loader import account_cache_clear

SERVERS = {
    "mysql": os.environ.get("LEGACY_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/gavel_legacy_t"),
    "postgres": os.environ.get(
        "LEGACY_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/gavel_legacy_t"
    ),
}
PAYMENTS = 600
SEED = 7


@dataclass(frozen=True)
class LegacySourceFixture:
    dialect: str
    database: LegacyDatabase
    manifest: Manifest


def generated(dialect: str, suffix: str, *, payments: int = PAYMENTS) -> LegacySourceFixture:
    base = database_parse(SERVERS[dialect])
    database = base.with_name(f"{base.name}_{suffix}")
    database_recreate(database)
    _CREATED.add(database)
    manifest = legacy_generate(
        database=database, config=GeneratorConfig(payments=payments, seed=SEED)
    )
    return LegacySourceFixture(dialect, database, manifest)


_SHARED: dict[str, LegacySourceFixture] = {}
_CREATED: set[LegacyDatabase] = set()


@pytest.fixture(scope="session", autouse=True)
def _generated_databases_dropped() -> Iterator[None]:
    yield
    for database in _CREATED:
        database_drop(database)


@pytest.fixture(autouse=True)
def _deferred_indexes_built(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test whose import committed and stopped before building the indexes it deferred
    (ADR 0011) leaves them built for the next test: before the database is flushed, which
    would forget which they were."""
    if "transactional_db" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")  # set up first, so flushed after this
    yield
    indexes_restore()


@pytest.fixture(params=["mysql", "postgres"])
def legacy_source(request: pytest.FixtureRequest) -> LegacySourceFixture:
    """A read-only generated portal, shared by the session (tests must not change it)."""
    dialect = request.param
    if dialect not in _SHARED:
        _SHARED[dialect] = generated(dialect, f"shared_{os.getpid()}")
    return _SHARED[dialect]


@pytest.fixture
def mysql_source() -> LegacySourceFixture:
    """A generated portal on MariaDB that the test may change."""
    return generated("mysql", f"own_{os.getpid()}")


@pytest.fixture(params=["mysql", "postgres"])
def own_source(request: pytest.FixtureRequest) -> LegacySourceFixture:
    """A generated portal on each dialect that the test may change."""
    return generated(request.param, f"own_{os.getpid()}")


@pytest.fixture(autouse=True)
def _ledger_account_cache() -> Iterator[None]:
    account_cache_clear()
    yield
    account_cache_clear()


def truncate_import(*, include_users: bool = True) -> None:
    """Forget every import: staging, quarantine, runs, legacy users, their orders and the
    ledger (TRUNCATE does not fire the ledger's append-only triggers). Indexes an unfinished
    run deferred are built first: their records go with the runs."""
    indexes_restore()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # fire deferred checks before TRUNCATE
        cursor.execute(
            "TRUNCATE legacy_importcheckpoint, legacy_legacyanomaly, legacy_verificationreport,"
            " legacy_importrun, legacy_legacyidmap, legacy_legacyperson,"
            " legacy_legacystripeaccount, legacy_legacylisting, legacy_importedlisting,"
            " legacy_legacyorder,"
            " legacy_legacyordertransition, legacy_legacypayment, legacy_legacypaymentsetting,"
            " ledger_posting, ledger_journalentry, ledger_ledgeraccount,"
            " connect_connectedaccountchange, connect_connectedaccount, common_outboxmessage,"
            " payments_order, auctions_buyercustomer"
            " CASCADE"
        )
        if include_users:
            cursor.execute("DELETE FROM users_user WHERE legacy_person_id IS NOT NULL")
    account_cache_clear()


def email_conflict_make(database: LegacyDatabase, *, having: str) -> tuple[str, str]:
    """Give the newest person with an address who ``having`` (SQL over ``people p``, MySQL)
    the address of the oldest other one, in another case: the import finds an
    ``email_conflict`` and gives them no user. Returns their id and their own address."""
    legacy = database_connect(database, autocommit=True)
    try:
        with legacy.cursor() as cursor:
            # ``having`` is a test's own SQL, not input.
            cursor.execute(
                "SELECT p.id, p.email FROM people p"  # noqa: S608
                " WHERE p.deleted = 0 AND p.email LIKE '%%@%%'"
                f" AND {having} ORDER BY p.created_at DESC, p.id DESC LIMIT 1"
            )
            person, own_email = cursor.fetchone()
            cursor.execute(
                "SELECT email FROM people WHERE id <> %s AND deleted = 0 AND email LIKE '%%@%%'"
                " ORDER BY created_at, id LIMIT 1",
                [person],
            )
            (taken,) = cursor.fetchone()
            cursor.execute("UPDATE people SET email = %s WHERE id = %s", [taken.upper(), person])
    finally:
        legacy.close()
    return person, own_email


def email_give_back(database: LegacyDatabase, person: str, email: str) -> None:
    """The portal gives the person their own address back (MySQL)."""
    legacy = database_connect(database, autocommit=True)
    try:
        with legacy.cursor() as cursor:
            cursor.execute(
                "UPDATE people SET email = %s, updated_at = UTC_TIMESTAMP() WHERE id = %s",
                [email, person],
            )
    finally:
        legacy.close()
