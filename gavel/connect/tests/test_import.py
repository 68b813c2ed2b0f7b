"""Loading the legacy portal's sellers: idempotent, conflicts reported, state read from Stripe."""

from __future__ import annotations

from typing import Any

import pytest

from gavel.common.errors import ServiceError
from gavel.common.models import OutboxMessage
from gavel.connect.models import ConnectedAccount
from gavel.connect.selectors import seller_selling_status
from gavel.connect.services import AccountImport, connected_accounts_import
from gavel.connect.tasks import (
    connected_account_refresh,
    connected_accounts_janitor,
    connected_accounts_refresh,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def legacy_account(sandbox: Any) -> str:
    account = sandbox.client().v1.accounts.create(
        params={
            "type": "express",
            "capabilities": {
                "transfers": {"requested": True},
                "card_payments": {"requested": True},
            },
        }
    )
    sandbox.complete_onboarding(account.id)
    return str(account.id)


def test_import_is_idempotent_and_reads_stripe(make_user: Any, legacy_account: str) -> None:
    seller = make_user("legacy@example.com")
    batch = [AccountImport(user_id=seller.pk, stripe_account_id=legacy_account)]

    first = connected_accounts_import(accounts=batch)
    second = connected_accounts_import(accounts=batch)

    assert (first.created, first.already_imported, first.conflicts) == (1, 0, [])
    assert (second.created, second.already_imported, second.conflicts) == (0, 1, [])
    account = ConnectedAccount.objects.get()
    assert (account.status, account.preset, account.stripe_api) == ("unsynced", "other", "v1")
    assert seller_selling_status(user=seller).code == "account_unsynced"
    seller.refresh_from_db()
    assert seller.is_seller is True
    message = OutboxMessage.objects.get()
    assert (message.task_name, message.kwargs) == (
        "gavel.connect.tasks.connected_account_refresh",
        {"connected_account_id": account.pk},
    )

    assert connected_account_refresh(**message.kwargs) == "enabled"
    assert seller_selling_status(user=seller).code == "ok"
    assert list(account.changes.values_list("source", "status_after")) == [
        ("import", "unsynced"),
        ("refresh", "enabled"),
    ]


def test_conflicts_are_reported_not_loaded(
    make_user: Any, legacy_account: str, sandbox: Any
) -> None:
    one, two = make_user("one@example.com"), make_user("two@example.com")
    connected_accounts_import(
        accounts=[AccountImport(user_id=one.pk, stripe_account_id=legacy_account)]
    )
    clash_user = AccountImport(user_id=one.pk, stripe_account_id="acct_other123456")
    clash_account = AccountImport(user_id=two.pk, stripe_account_id=legacy_account, stripe_api="v2")

    three = make_user("three@example.com")
    new = AccountImport(user_id=three.pk, stripe_account_id="acct_new1234567")
    twice_in_batch = AccountImport(user_id=three.pk, stripe_account_id="acct_new7654321")

    result = connected_accounts_import(accounts=[clash_user, clash_account, new, twice_in_batch])

    assert (result.created, result.already_imported) == (1, 0)
    assert result.conflicts == [clash_user, clash_account, twice_in_batch]
    assert ConnectedAccount.objects.count() == 2


def test_v2_accounts_are_recorded_as_such_and_synced_by_the_janitor(
    make_user: Any, legacy_account: str
) -> None:
    seller = make_user("v2@example.com")
    connected_accounts_import(
        accounts=[
            AccountImport(user_id=seller.pk, stripe_account_id=legacy_account, stripe_api="v2")
        ]
    )

    assert connected_accounts_janitor() == {"settled": 0, "resynced": 1, "failed": 0}
    account = ConnectedAccount.objects.get()
    assert (account.stripe_api, account.status) == ("v2", "enabled")


@pytest.mark.parametrize(
    "item",
    [
        AccountImport(user_id=1, stripe_account_id="cus_123"),
        AccountImport(user_id=1, stripe_account_id="acct_123", stripe_api="v3"),
    ],
)
def test_bad_rows_refuse_the_whole_batch(item: AccountImport) -> None:
    with pytest.raises(ServiceError) as refused:
        connected_accounts_import(accounts=[item])

    assert refused.value.code == "invalid_import"
    assert ConnectedAccount.objects.count() == 0


def test_a_batched_import_enqueues_one_refresh_for_the_batch(
    make_user: Any, legacy_account: str, sandbox: Any
) -> None:
    seller, other = make_user("batched@example.com"), make_user("missing@example.com")
    batch = [
        AccountImport(user_id=seller.pk, stripe_account_id=legacy_account),
        AccountImport(user_id=other.pk, stripe_account_id="acct_NotInStripe00001"),
    ]
    result = connected_accounts_import(accounts=batch, is_refresh_batched=True)
    assert result.created == 2
    message = OutboxMessage.objects.get()
    ids = sorted(ConnectedAccount.objects.values_list("pk", flat=True))
    assert (message.task_name, message.kwargs) == (
        "gavel.connect.tasks.connected_accounts_refresh",
        {"connected_account_ids": ids},
    )
    assert connected_accounts_import(accounts=batch, is_refresh_batched=True).created == 0
    assert OutboxMessage.objects.count() == 1

    # The account Stripe does not know stays unsynced for the janitor; the other is read.
    assert connected_accounts_refresh(**message.kwargs) == {"refreshed": 1, "failed": 1}
    statuses = dict(ConnectedAccount.objects.values_list("stripe_account_id", "status"))
    assert statuses == {legacy_account: "enabled", "acct_NotInStripe00001": "unsynced"}


def test_refresh_task_for_a_row_that_no_longer_exists_is_a_no_op() -> None:
    assert connected_account_refresh(connected_account_id=987_654) == "missing"
    assert ConnectedAccount.objects.count() == 0
