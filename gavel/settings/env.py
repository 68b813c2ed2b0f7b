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


def instant_parse(raw: str) -> datetime:
    """An ISO 8601 instant with its offset (``2026-11-26T10:00:00+00:00`` or ``…Z``).
    ValueError for anything else: a time without an offset names no instant."""
    value = datetime.fromisoformat(raw)  # ValueError: not ISO 8601
    if value.tzinfo is None:
        raise ValueError(f"needs a UTC offset (…+00:00 or …Z), got {raw!r}")
    return value


def env_datetime(name: str) -> datetime | None:
    """``instant_parse`` of the variable; unset or blank: None."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return instant_parse(raw)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be an ISO 8601 instant: {error}") from error
