"""Connections to the legacy portal's database: MySQL/MariaDB through PyMySQL, or PostgreSQL
through psycopg. Both return plain DB-API connections; ``Dialect`` says which one it is."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import pymysql
from pymysql.constants import FIELD_TYPE
from pymysql.converters import conversions


class Dialect(enum.StrEnum):
    MYSQL = "mysql"
    POSTGRES = "postgres"


class LegacyConnectionError(ValueError):
    """A LEGACY_DATABASE_URL that cannot be used."""


@dataclass(frozen=True, slots=True)
class LegacyDatabase:
    dialect: Dialect
    host: str
    port: int
    user: str
    password: str
    name: str

    @property
    def url(self) -> str:
        scheme = "mysql" if self.dialect is Dialect.MYSQL else "postgres"
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"{scheme}://{auth}@{self.host}:{self.port}/{self.name}"

    def with_name(self, name: str) -> LegacyDatabase:
        return LegacyDatabase(self.dialect, self.host, self.port, self.user, self.password, name)


def database_parse(url: str) -> LegacyDatabase:
    """``mysql://root@127.0.0.1:3306/legacy`` or ``postgres://postgres@127.0.0.1/legacy``."""
    if not url:
        raise LegacyConnectionError("LEGACY_DATABASE_URL is not set")
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme in {"mysql", "mariadb"}:
        dialect, default_port = Dialect.MYSQL, 3306
    elif scheme in {"postgres", "postgresql"}:
        dialect, default_port = Dialect.POSTGRES, 5432
    else:
        raise LegacyConnectionError(f"Unsupported legacy database scheme: {parts.scheme!r}")
    name = parts.path.lstrip("/")
    if not name:
        raise LegacyConnectionError("LEGACY_DATABASE_URL names no database")
    return LegacyDatabase(
        dialect=dialect,
        host=parts.hostname or "127.0.0.1",
        port=parts.port or default_port,
        user=unquote(parts.username or ("root" if dialect is Dialect.MYSQL else "postgres")),
        password=unquote(parts.password or ""),
        name=name,
    )


def _mysql_datetime(text: str) -> datetime | str:
    """``datetime.fromisoformat`` (C) is several times faster than PyMySQL's own parser, which
    matters over millions of rows. MySQL's zero date is not a date: it stays text, as PyMySQL
    leaves it, and staging it fails loudly rather than storing a wrong instant."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return text


MYSQL_CONVERSIONS: dict[int | type[Any], Callable[[Any], Any]] = {
    **conversions,
    FIELD_TYPE.DATETIME: _mysql_datetime,
}


def database_connect(database: LegacyDatabase, *, autocommit: bool = False) -> Any:
    """A DB-API connection. MySQL sessions read and write UTC (Rails stores UTC naive)."""
    if database.dialect is Dialect.MYSQL:
        return pymysql.connect(
            host=database.host,
            port=database.port,
            user=database.user,
            password=database.password,
            database=database.name,
            charset="utf8mb3",
            local_infile=True,
            autocommit=autocommit,
            init_command="SET time_zone = '+00:00'",
            conv=MYSQL_CONVERSIONS,
        )
    return psycopg.connect(
        host=database.host,
        port=database.port,
        user=database.user,
        password=database.password or None,
        dbname=database.name,
        autocommit=autocommit,
        options="-c timezone=UTC",
    )


def _server_execute(database: LegacyDatabase, statements: list[str]) -> None:
    """Run ``statements`` on the database's server (connected to no database of its own),
    autocommitted: creating and dropping databases."""
    if database.dialect is Dialect.MYSQL:
        server = pymysql.connect(
            host=database.host,
            port=database.port,
            user=database.user,
            password=database.password,
            autocommit=True,
        )
        try:
            with server.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        finally:
            server.close()
        return
    with psycopg.connect(
        host=database.host,
        port=database.port,
        user=database.user,
        password=database.password or None,
        dbname="postgres",
        autocommit=True,
    ) as postgres_server:
        for statement in statements:
            postgres_server.execute(statement)


def database_recreate(database: LegacyDatabase) -> None:
    """Drop and create the database (generator and tests only: never the real portal)."""
    if database.dialect is Dialect.MYSQL:
        create = (
            f"CREATE DATABASE `{database.name}` CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci"
        )
    else:
        create = f"CREATE DATABASE \"{database.name}\" ENCODING 'UTF8' TEMPLATE template0"
    _server_execute(database, [_drop_statement(database), create])


def database_drop(database: LegacyDatabase) -> None:
    """Drop a generated database (tests clean up after themselves)."""
    _server_execute(database, [_drop_statement(database)])


def _drop_statement(database: LegacyDatabase) -> str:
    if database.dialect is Dialect.MYSQL:
        return f"DROP DATABASE IF EXISTS `{database.name}`"
    return f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)'
