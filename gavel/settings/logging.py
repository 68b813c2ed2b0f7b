"""Structured JSON logs and Sentry."""

from __future__ import annotations

from gavel.settings.env import env_str

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
SENTRY_DSN = env_str("SENTRY_DSN", "")
SENTRY_ENVIRONMENT = env_str("SENTRY_ENVIRONMENT", "development")
# When set, /metrics answers only to "Authorization: Bearer <token>"; when empty, restrict it at
# the network (it carries no personal data, but it tells volumes).
METRICS_BEARER_TOKEN = env_str("METRICS_BEARER_TOKEN", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "gavel.observability.logging.ContextFilter"},
        "scrub": {"()": "gavel.observability.logging.ScrubFilter"},
    },
    "formatters": {
        "json": {
            "()": "gavel.observability.logging.ScrubbingJsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["context", "scrub"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}
