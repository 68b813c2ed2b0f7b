"""Development, tests and ``make serve``: PostgreSQL, Redis, real services."""

from __future__ import annotations

from gavel.settings.base import *  # noqa: F403
