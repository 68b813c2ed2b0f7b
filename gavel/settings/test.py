"""The test suite: real PostgreSQL, Redis and RabbitMQ; the in-process Stripe sandbox."""

from __future__ import annotations

import os

from gavel.settings.base import *  # noqa: F403
from gavel.settings.env import env_str

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STRIPE_API_BASE = "inprocess"
STRIPE_SECRET_KEY = "sk_test_gavel_tests"
STRIPE_MAX_NETWORK_RETRIES = 0
STRIPE_WEBHOOK_SECRETS = ["whsec_test_platform_current", "whsec_test_platform_previous"]
STRIPE_CONNECT_WEBHOOK_SECRETS = ["whsec_test_connect"]
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# One test database per run (several runs may share a machine); pytest-django drops it at the end.
DATABASES["default"]["TEST"] = {  # noqa: F405
    "NAME": env_str("TEST_DATABASE_NAME", f"gavel_test_{os.getpid()}")
}
LOGGING["root"]["level"] = env_str("LOG_LEVEL", "WARNING")  # type: ignore[index]  # noqa: F405
