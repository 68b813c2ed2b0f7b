"""The embedded runtime: a fresh SQLite database, the in-process sandbox and Celery worker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command


def database_fresh() -> None:
    """Start every demo from an empty database (the SQLite file, or the PostgreSQL database
    of ``DEMO_DATABASE_URL`` dropped and created) so the story is the same each time."""
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        from django.db import connection

        from gavel.legacy.connections import Dialect, LegacyDatabase, database_recreate

        default = settings.DATABASES["default"]
        connection.close()
        database_recreate(
            LegacyDatabase(
                dialect=Dialect.POSTGRES,
                host=str(default.get("HOST") or "127.0.0.1"),
                port=int(default.get("PORT") or 5432),
                user=str(default.get("USER") or "postgres"),
                password=str(default.get("PASSWORD") or ""),
                name=str(default["NAME"]),
            )
        )
        call_command("migrate", verbosity=0, interactive=False)
        call_command("collectstatic", verbosity=0, interactive=False)
        return
    path = Path(settings.DATABASES["default"]["NAME"])
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            candidate.unlink()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)


@contextmanager
def sandbox_bound() -> Iterator[Any]:
    """The project's Stripe sandbox, in this process, as the gateway's Stripe."""
    from gavel.gateway.client import client_bind_sandbox
    from stripe_sandbox import Sandbox

    sandbox = Sandbox(api_keys=[settings.STRIPE_SECRET_KEY])
    client_bind_sandbox(sandbox.http_client())
    try:
        yield sandbox
    finally:
        client_bind_sandbox(None)


@contextmanager
def worker_running() -> Iterator[Any]:
    """A Celery worker thread on the in-memory broker, consuming every queue."""
    from celery.contrib.testing.worker import start_worker

    from gavel.celery import app

    with start_worker(
        app,
        pool="solo",
        perform_ping_check=False,
        shutdown_timeout=10,
        queues=[queue.name for queue in settings.CELERY_TASK_QUEUES],
        loglevel="WARNING",
    ) as worker:
        yield worker
