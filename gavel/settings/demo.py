"""The embedded ``make demo``: a SQLite file (or ``DEMO_DATABASE_URL``), an in-memory broker and
the in-process sandbox."""

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
# DEMO_DATABASE_URL=postgres://…/gavel_demo runs the same story on PostgreSQL (dropped and
# created fresh each run), which adds the legacy portal import: the importer writes with
# PostgreSQL's COPY and upserts, which SQLite does not have.
DEMO_DATABASE_URL = env_str("DEMO_DATABASE_URL", "")
if DEMO_DATABASE_URL:
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
