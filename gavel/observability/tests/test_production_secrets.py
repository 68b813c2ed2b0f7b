"""Production refuses to start when a webhook secret it would sign or verify with is missing."""

from __future__ import annotations

import pytest

from gavel.observability.tests.test_observability import PRODUCTION_ENV, _production_check


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "message"),
    [
        # Blank entries parse to no secret at all: every platform event would be refused.
        ({"STRIPE_WEBHOOK_SECRETS": " , "}, "Missing required environment: STRIPE_WEBHOOK_SECRETS"),
        # Forwarding on with no secret signs the legacy portal's events with an empty key.
        (
            {"LEGACY_WEBHOOK_URL": "https://portal.example.com/stripe"},
            "Missing required environment: LEGACY_WEBHOOK_SECRET",
        ),
    ],
)
def test_production_settings_refuse_to_start_without_a_webhook_secret(
    change: dict[str, str], message: str
) -> None:
    result = _production_check({**PRODUCTION_ENV, **change})
    assert result.returncode != 0, result.stdout
    assert message in result.stderr


@pytest.mark.slow
def test_production_settings_start_with_legacy_forwarding_and_its_secret() -> None:
    result = _production_check(
        {
            **PRODUCTION_ENV,
            "LEGACY_WEBHOOK_URL": "https://portal.example.com/stripe",
            "LEGACY_WEBHOOK_SECRET": "whsec_legacy_portal",
        }
    )
    assert result.returncode == 0, result.stderr + result.stdout
