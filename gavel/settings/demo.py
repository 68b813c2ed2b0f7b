"""``make demo``: the local PostgreSQL when it answers (or ``DEMO_DATABASE_URL``), else an
embedded SQLite file; an in-memory broker and the in-process sandbox."""

from __future__ import annotations

import dj_database_url

from gavel.settings.base import *  # noqa: F403
from gavel.settings.env import env_str

DEBUG = False
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(BASE_DIR / "var" / "demo.sqlite3"),  # noqa: F405
        # The story's thread and the in-process worker write concurrently: write-ahead logging
        # lets readers go on beside a writer, and IMMEDIATE transactions take the write lock at
        # BEGIN, waiting up to the timeout, instead of failing when a read turns into a write.
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}
# On PostgreSQL (dropped and created fresh each run) the story adds the legacy portal import:
# the importer writes with PostgreSQL's COPY and upserts, which SQLite does not have.
# DEMO_DATABASE_URL: a postgres://… URL; "sqlite" for the embedded file; unset: the local
# PostgreSQL (DEMO_POSTGRES_URL) when it answers within a second, else the embedded file.
DEMO_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/gavel_demo"


def _postgres_answers(url: str) -> bool:
    import psycopg

    server = dj_database_url.parse(url)
    try:
        psycopg.connect(
            host=server["HOST"] or "127.0.0.1",
            port=int(server["PORT"] or 5432),
            user=server["USER"] or "postgres",
            password=server["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=1,
        ).close()
    except psycopg.Error:
        return False
    return True


DEMO_DATABASE_URL = env_str("DEMO_DATABASE_URL", "")
if not DEMO_DATABASE_URL:
    DEMO_DATABASE_URL = DEMO_POSTGRES_URL if _postgres_answers(DEMO_POSTGRES_URL) else "sqlite"
if DEMO_DATABASE_URL != "sqlite":
    DATABASES = {"default": dj_database_url.parse(DEMO_DATABASE_URL)}
# The demo's generated legacy portal (PostgreSQL demo only), dropped and created each run.
DEMO_LEGACY_DATABASE_URL = env_str(
    "DEMO_LEGACY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gavel_demo_legacy"
)
CELERY_BROKER_URL = "memory://localhost/"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
STRIPE_API_BASE = "inprocess"
STRIPE_SECRET_KEY = "sk_test_gavel_demo"
STRIPE_WEBHOOK_SECRETS = [env_str("DEMO_WEBHOOK_SECRET", "whsec_demo_platform")]
STRIPE_CONNECT_WEBHOOK_SECRETS = [env_str("DEMO_CONNECT_WEBHOOK_SECRET", "whsec_demo_connect")]

# The story speaks for itself; JSON logs only for what went wrong.
LOGGING["root"]["level"] = env_str("LOG_LEVEL", "ERROR")  # type: ignore[index]  # noqa: F405
# Refusals the story shows on purpose (a bid without a card: 403) are not errors worth a log line.
LOGGING["loggers"]["django.request"] = {"level": env_str("LOG_LEVEL", "ERROR")}  # type: ignore[index]  # noqa: F405
# Reset emails stay in memory, where the story reads the link an imported member receives.
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
