"""Typed readers for environment variables, with the defaults documented at each call."""

from __future__ import annotations

import os
from datetime import datetime

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, *, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, *, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from error


def env_list(name: str, default: str = "") -> list[str]:
    """A comma-separated list; blanks are dropped."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_datetime(name: str) -> datetime | None:
    """An ISO 8601 instant with its offset (``2026-11-26T10:00:00+00:00``); unset or blank:
    None. A time without an offset is refused: it names no instant."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be an ISO 8601 instant, got {raw!r}") from error
    if value.tzinfo is None:
        raise ImproperlyConfigured(f"{name} needs a UTC offset (…+00:00 or …Z), got {raw!r}")
    return value
