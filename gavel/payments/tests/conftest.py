"""Fixtures of the payments tests."""

from __future__ import annotations

from typing import Any

import pytest

from gavel.payments.tests.factories import card_save, seller_make, user_make
from gavel.users.models import User


@pytest.fixture
def seller_pair(sandbox: Any, db: None) -> list[tuple[User, str]]:
    return [seller_make(sandbox), seller_make(sandbox)]


@pytest.fixture
def card_buyer(sandbox: Any, db: None) -> User:
    user = user_make()
    card_save(sandbox, user, "pm_card_bypassPending")
    return user
