"""The janitor settles lost creates with the same idempotency key and re-reads stale mirrors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from gavel.connect.models import ConnectedAccount
from gavel.connect.tasks import connected_accounts_janitor
from gavel.connect.tests.conftest import ONBOARDING_URL

pytestmark = pytest.mark.django_db


def _lost_create(seller_client: Any, sandbox: Any, *, age: timedelta) -> ConnectedAccount:
    sandbox.timeout_after_apply(method="POST", path="/v1/accounts")
    assert seller_client.post(ONBOARDING_URL, {}, format="json").status_code == 503
    ConnectedAccount.objects.update(created_at=timezone.now() - age)
    return ConnectedAccount.objects.get()


def test_lost_create_is_settled_with_the_account_stripe_made(
    seller_client: Any, sandbox: Any
) -> None:
    account = _lost_create(seller_client, sandbox, age=timedelta(minutes=5))
    made_by_stripe = [a.id for a in sandbox.client().v1.accounts.list().data]

    assert connected_accounts_janitor() == {"settled": 1, "resynced": 0, "failed": 0}

    account.refresh_from_db()
    assert [account.stripe_account_id] == made_by_stripe
    assert account.status == "onboarding"
    assert len(sandbox.client().v1.accounts.list().data) == 1
    assert connected_accounts_janitor() == {"settled": 0, "resynced": 0, "failed": 0}


def test_a_fresh_lost_create_waits_for_the_seller_or_the_next_run(
    seller_client: Any, sandbox: Any
) -> None:
    _lost_create(seller_client, sandbox, age=timedelta(seconds=0))

    assert connected_accounts_janitor() == {"settled": 0, "resynced": 0, "failed": 0}


def test_past_the_idempotency_window_it_is_left_to_support(
    seller_client: Any, sandbox: Any
) -> None:
    account = _lost_create(seller_client, sandbox, age=timedelta(hours=30))

    assert connected_accounts_janitor() == {"settled": 0, "resynced": 0, "failed": 1}
    account.refresh_from_db()
    assert account.stripe_account_id is None
    assert len(sandbox.client().v1.accounts.list().data) == 1


def test_stale_mirrors_are_re_read_and_failures_counted(seller_client: Any, sandbox: Any) -> None:
    seller_client.post(ONBOARDING_URL, {}, format="json")
    account = ConnectedAccount.objects.get()
    sandbox.complete_onboarding(account.stripe_account_id)
    ConnectedAccount.objects.update(synced_at=timezone.now() - timedelta(days=2))
    sandbox.fail_requests(500, method="GET", path="/v1/accounts")

    assert connected_accounts_janitor() == {"settled": 0, "resynced": 0, "failed": 1}
    assert connected_accounts_janitor() == {"settled": 0, "resynced": 1, "failed": 0}

    account.refresh_from_db()
    assert account.status == "enabled"
    assert connected_accounts_janitor() == {"settled": 0, "resynced": 0, "failed": 0}


def test_a_create_stripe_keeps_refusing_is_counted(seller_client: Any, sandbox: Any) -> None:
    _lost_create(seller_client, sandbox, age=timedelta(minutes=5))
    sandbox.fail_requests(500, method="POST", path="/v1/accounts")

    assert connected_accounts_janitor() == {"settled": 0, "resynced": 0, "failed": 1}
