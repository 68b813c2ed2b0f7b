"""The typed environment readers settings are built from: a bad value stops the start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.core.exceptions import ImproperlyConfigured

from gavel.settings.env import env_datetime


def test_an_instant_is_read_with_its_offset_and_unset_means_none(monkeypatch) -> None:
    monkeypatch.delenv("GAVEL_TEST_SINCE", raising=False)
    assert env_datetime("GAVEL_TEST_SINCE") is None
    monkeypatch.setenv("GAVEL_TEST_SINCE", "  ")
    assert env_datetime("GAVEL_TEST_SINCE") is None
    monkeypatch.setenv("GAVEL_TEST_SINCE", "2026-11-26T10:00:00Z")
    assert env_datetime("GAVEL_TEST_SINCE") == datetime(2026, 11, 26, 10, tzinfo=UTC)
    monkeypatch.setenv("GAVEL_TEST_SINCE", "2026-11-26T11:30:00+01:30")
    assert env_datetime("GAVEL_TEST_SINCE") == datetime(
        2026, 11, 26, 11, 30, tzinfo=timezone(timedelta(hours=1, minutes=30))
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [("2026-11-26T10:00:00", "needs a UTC offset"), ("yesterday", "ISO 8601 instant")],
)
def test_a_time_without_offset_or_not_a_time_is_refused(monkeypatch, raw, message) -> None:
    monkeypatch.setenv("GAVEL_TEST_SINCE", raw)
    with pytest.raises(ImproperlyConfigured, match=message):
        env_datetime("GAVEL_TEST_SINCE")
