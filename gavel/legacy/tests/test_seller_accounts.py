"""``_seller_accounts``: built for each page's transaction, or once for a load lane."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from gavel.legacy.loader import seller_accounts_kept, seller_accounts_prepare
from gavel.legacy.models import LegacyStripeAccount

pytestmark = pytest.mark.django_db

AT = datetime(2024, 1, 1, tzinfo=UTC)


def _account(legacy_id: int, person: str, seller_id: str) -> None:
    LegacyStripeAccount.objects.create(
        legacy_id=legacy_id,
        person_legacy_id=person,
        stripe_seller_id=seller_id,
        staged_run_id=1,
        legacy_created_at=AT,
        legacy_updated_at=AT,
    )


def _table() -> dict[str, str] | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('pg_temp._seller_accounts') IS NOT NULL")
        (exists,) = cursor.fetchone()
        if not exists:
            return None
        cursor.execute("SELECT person, stripe_seller_id FROM _seller_accounts")
        return dict(cursor.fetchall())


def _page_failing() -> None:
    """A page that builds the table, then fails: its transaction is rolled back."""
    try:
        with transaction.atomic():
            seller_accounts_prepare()
            raise RuntimeError("the page failed")
    except RuntimeError:
        pass


def test_each_persons_first_valid_account_built_per_page_or_kept_for_a_lane() -> None:
    _account(1, "seller-a", "not-an-account")
    _account(2, "seller-a", "acct_1AAAAAAAAAAAAAAA")
    _account(3, "seller-a", "acct_1BBBBBBBBBBBBBBB")
    _account(4, "buyer-b", None)  # type: ignore[arg-type]

    # Outside a lane: built afresh each time, so it follows staging.
    seller_accounts_prepare()
    assert _table() == {"seller-a": "acct_1AAAAAAAAAAAAAAA"}
    _account(5, "seller-c", "acct_1CCCCCCCCCCCCCCC")
    seller_accounts_prepare()
    assert _table() == {"seller-a": "acct_1AAAAAAAAAAAAAAA", "seller-c": "acct_1CCCCCCCCCCCCCCC"}

    with seller_accounts_kept():
        # The lane's first page builds it; later pages keep what it holds.
        with transaction.atomic():
            seller_accounts_prepare()
        _account(6, "seller-d", "acct_1DDDDDDDDDDDDDDD")
        with transaction.atomic():
            seller_accounts_prepare()
            assert "seller-d" not in (_table() or {})
        # A page whose transaction rolled back took the table it built with it: the next
        # page builds it again.
        connection.cursor().execute("DROP TABLE _seller_accounts")
        _page_failing()
        assert _table() is None
        with transaction.atomic():
            seller_accounts_prepare()
        assert (_table() or {}).get("seller-d") == "acct_1DDDDDDDDDDDDDDD"
    # Dropped when the lane ends.
    assert _table() is None
