"""The embedded ``make demo``: a SQLite file, an in-memory broker and the in-process sandbox."""

from __future__ import annotations

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
CELERY_BROKER_URL = "memory://localhost/"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
STRIPE_API_BASE = "inprocess"
STRIPE_SECRET_KEY = "sk_test_gavel_demo"
STRIPE_WEBHOOK_SECRETS = [env_str("DEMO_WEBHOOK_SECRET", "whsec_demo_platform")]
STRIPE_CONNECT_WEBHOOK_SECRETS = [env_str("DEMO_CONNECT_WEBHOOK_SECRET", "whsec_demo_connect")]

# The story speaks for itself; JSON logs only for what went wrong.
LOGGING["root"]["level"] = env_str("LOG_LEVEL", "ERROR")  # type: ignore[index]  # noqa: F405
