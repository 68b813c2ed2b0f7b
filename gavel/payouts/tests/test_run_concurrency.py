"""Two payout runs of one account at once (beat overlapping a slow run, a redelivered task):
the account is paid what it is owed once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from gavel.payments.services.transfers import seller_owed_minor
from gavel.payouts import services
from gavel.payouts.models import Payout
from gavel.payouts.tests.test_payouts import paid_seller  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_run_that_read_the_owed_amount_before_another_paid_it_pays_nothing_more(
    sandbox: Any,
    paid_seller: str,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Money in the seller's Stripe balance that Gavel does not owe them (a sale of their own):
    # the balance alone would let a second payout of the owed 9,000 through.
    sandbox.client().v1.payment_intents.create(
        params={
            "amount": 20_000,
            "currency": "usd",
            "payment_method": "pm_card_bypassPending",
            "confirm": True,
            "transfer_data": {"destination": paid_seller},
        }
    )
    owed_read = threading.Event()
    other_run_done = threading.Event()

    def owed_then_wait(*, account_id: str, currency: str) -> int:
        owed = seller_owed_minor(account_id=account_id, currency=currency)
        if threading.current_thread().name == "slow-run":
            owed_read.set()
            other_run_done.wait(timeout=3)
        return owed

    monkeypatch.setattr(services, "seller_owed_minor", owed_then_wait)

    def run(done: threading.Event | None = None) -> None:
        try:
            services.payouts_for_account_create(account_id=paid_seller)
        finally:
            if done is not None:
                done.set()
            connection.close()

    slow = threading.Thread(target=run, name="slow-run")
    slow.start()
    assert owed_read.wait(timeout=10)
    quick = threading.Thread(target=run, args=(other_run_done,), name="quick-run")
    quick.start()
    quick.join(timeout=30)
    slow.join(timeout=30)

    assert list(Payout.objects.values_list("amount_minor", "status")) == [(9_000, "pending")]
    stripe_payouts = sandbox.client().v1.payouts.list(options={"stripe_account": paid_seller})
    assert [payout.amount for payout in stripe_payouts.data] == [9_000]
