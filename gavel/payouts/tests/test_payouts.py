"""Payouts: the run, payout.paid / payout.failed, and the retry after the bank changes."""

from __future__ import annotations

from typing import Any

import pytest

from gavel.ledger.selectors import account_balance
from gavel.payments.services.charging import order_charge
from gavel.payments.services.orders import order_for_sale
from gavel.payments.services.transfers import order_receipt_confirm
from gavel.payments.tests.factories import (
    card_save,
    events_deliver,
    sale_make,
    seller_make,
    user_make,
)
from gavel.payments.tests.helpers import assert_books_clean
from gavel.payouts.models import Payout
from gavel.payouts.services import payout_failed_notify, payout_run


@pytest.fixture
def paid_seller(sandbox: Any, db: None) -> str:
    seller, account_id = seller_make(sandbox)
    buyer = user_make()
    card_save(sandbox, buyer, "pm_card_bypassPending")
    order = order_charge(order_id=order_for_sale(sale_id=sale_make(seller, buyer, 10_000).pk).pk)
    order_receipt_confirm(order_id=order.pk, user=buyer)
    return account_id


def test_failed_payout_returns_the_money_blocks_and_retries_after_bank_change(
    sandbox: Any, paid_seller: str
) -> None:
    assert payout_run().payouts_created == 1
    payout = Payout.objects.get()
    sandbox.fail_payout(payout.stripe_payout_id, "account_closed")
    events_deliver(sandbox, "payout.failed", account=paid_seller)
    payout.refresh_from_db()
    assert (payout.status, payout.failure_code, payout.blocks_until_bank_changes) == (
        "failed",
        "account_closed",
        True,
    )
    assert account_balance(code=f"seller_payable:{paid_seller}", currency="USD") == -9_000
    assert account_balance(code=f"connected_balance:{paid_seller}", currency="USD") == 9_000
    assert_books_clean()
    assert payout_failed_notify(payout_id=payout.pk) is True
    assert payout_failed_notify(payout_id=payout.pk) is False
    # Same bank: no new payout. Late events change nothing.
    assert payout_run().payouts_created == 0
    events_deliver(sandbox, "payout.updated", account=paid_seller)
    payout.refresh_from_db()
    assert payout.status == "failed"
    # New bank details: the next run pays again.
    sandbox.client().v1.accounts.update(
        paid_seller,
        params={
            "external_account": {
                "object": "bank_account",
                "account_number": "000123456780",
                "country": "US",
                "currency": "usd",
            }
        },
    )
    assert payout_run().payouts_created == 1
    assert Payout.objects.filter(status="pending").count() == 1
    assert account_balance(code=f"seller_payable:{paid_seller}", currency="USD") == 0
    assert_books_clean()


def test_payout_paid_and_nothing_paid_twice(sandbox: Any, paid_seller: str) -> None:
    payout_run()
    account = sandbox.get_object(paid_seller)
    assert account["settings"]["payouts"]["schedule"]["interval"] == "manual"
    assert payout_run().payouts_created == 0
    sandbox.advance(3 * 86_400)
    events_deliver(sandbox, "payout.updated", "payout.paid", account=paid_seller)
    assert Payout.objects.get().status == "paid"
    assert_books_clean()


def test_payouts_refused_by_stripe_are_recorded(sandbox: Any, paid_seller: str) -> None:
    sandbox.require_information(paid_seller, past_due=True)
    from gavel.payouts.services import payout_accounts, payouts_for_account_create

    assert payout_accounts() == [paid_seller]
    payouts_for_account_create(account_id=paid_seller)
    payout = Payout.objects.get()
    assert (payout.status, payout.failure_code) == ("failed", "payouts_not_allowed")
    assert account_balance(code=f"seller_payable:{paid_seller}", currency="USD") == -9_000
    assert_books_clean()


def test_connect_verdict_stops_the_run(sandbox: Any, paid_seller: str) -> None:
    from gavel.connect.models import ConnectedAccount

    ConnectedAccount.objects.filter(stripe_account_id=paid_seller).update(
        capabilities={"transfers": "inactive"}
    )
    assert payout_run().payouts_created == 0
    assert Payout.objects.count() == 0


def test_a_payout_of_another_account_naming_ours_in_its_metadata_changes_nothing(
    sandbox: Any, paid_seller: str
) -> None:
    from gavel.payouts.services import payouts_for_account_create

    [payout_id] = payouts_for_account_create(account_id=paid_seller)
    _, other_account = seller_make(sandbox)
    sandbox.client().v1.payment_intents.create(
        params={
            "amount": 5_000,
            "currency": "usd",
            "payment_method": "pm_card_bypassPending",
            "confirm": True,
            "transfer_data": {"destination": other_account},
        }
    )
    # A payout Gavel did not make (a Standard account's own, the legacy portal's) whose
    # metadata happens to name our payout.
    sandbox.client().v1.payouts.create(
        params={
            "amount": 5_000,
            "currency": "usd",
            "metadata": {"gavel_payout_id": str(payout_id)},
        },
        options={"stripe_account": other_account},
    )
    sandbox.advance(3 * 86_400)

    assert events_deliver(sandbox, "payout.paid", account=other_account) == 1

    payout = Payout.objects.get()
    assert (payout.pk, payout.account_id, payout.status) == (payout_id, paid_seller, "pending")
    assert account_balance(code=f"seller_payable:{paid_seller}", currency="USD") == 0


def test_another_stripe_payout_naming_ours_does_not_end_it(sandbox: Any, paid_seller: str) -> None:
    from gavel.payouts.services import payouts_for_account_create

    [payout_id] = payouts_for_account_create(account_id=paid_seller)
    sandbox.client().v1.payment_intents.create(
        params={
            "amount": 9_000,
            "currency": "usd",
            "payment_method": "pm_card_bypassPending",
            "confirm": True,
            "transfer_data": {"destination": paid_seller},
        }
    )
    # A second Stripe payout of the same account whose metadata names our payout (one Gavel did
    # not record, e.g. re-sent after its idempotency key expired), and it fails.
    other = sandbox.client().v1.payouts.create(
        params={
            "amount": 9_000,
            "currency": "usd",
            "metadata": {"gavel_payout_id": str(payout_id)},
        },
        options={"stripe_account": paid_seller},
    )
    sandbox.fail_payout(other.id, "account_closed")

    assert events_deliver(sandbox, "payout.failed", account=paid_seller) == 1

    payout = Payout.objects.get()
    assert (payout.status, payout.blocks_until_bank_changes, payout.failure_code) == (
        "pending",
        False,
        "",
    )
    assert account_balance(code=f"seller_payable:{paid_seller}", currency="USD") == 0
