"""Fixtures of the auctions tests."""

from __future__ import annotations

import pytest

from gavel.users.models import User


def _seller_flag_decides(*, user: User) -> tuple[bool, str]:
    return (True, "") if user.is_seller else (False, "Only sellers may list items.")


@pytest.fixture(autouse=True)
def sellers_may_list(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Who may sell belongs to Connect (tested there and in test_policies); here a seller is
    anyone flagged ``is_seller``, so auction tests need no onboarded Stripe account."""
    if request.node.get_closest_marker("real_seller_policy") is None:
        monkeypatch.setattr("gavel.auctions.services.listing.seller_can_list", _seller_flag_decides)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real_seller_policy: use gavel.auctions.policies.seller_can_list as is"
    )
