"""Create the PostgreSQL database named by DATABASE_URL (or the settings' default) if missing."""

from __future__ import annotations

import os
import sys

import django
import psycopg
from psycopg import sql


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gavel.settings.local")
    django.setup()
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        return 0
    params = {
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database["NAME"]]
        ).fetchone()
        if not exists:
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database["NAME"]))
            connection.execute(statement)
            print(f"created database {database['NAME']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
