"""The Stripe cross-check of verification, against the sandbox: a portal whose payments carry
the ids of real sandbox objects (PaymentIntents, charges, transfers, payouts), some right and
some deliberately wrong, imported, then verified with the cross-check. Every wrong id or
amount is its own report row; the right ones agree."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from gavel.legacy.connections import LegacyDatabase, database_connect
from gavel.legacy.importer import ImportOptions, legacy_import
from gavel.legacy.tests.conftest import LegacySourceFixture, generated
from gavel.legacy.tests.portal_rows import (
    NET,
    PAID,
    PREAUTHORIZED,
    SUM,
    PortalPayment,
    portal_transaction_write,
)
from gavel.legacy.verify import legacy_verify

pytestmark = pytest.mark.django_db

CONFIRMED = (*PAID, "confirmed")
MISSING_CHARGE = "ch_000000000000000000missing"
MISSING_PAYOUT = "po_000000000000000000missing"
MISSING_ACCOUNT = "acct_0000000000missing"
MISSING_CUSTOMER = "cus_00000000000missing"


def _stripe_accounts_write(
    database: LegacyDatabase, rows: list[tuple[int, str | None, str | None]]
) -> None:
    """A person and a Stripe accounts row each, as the portal writes them; the generated
    portal's own rows (made-up ids) are deleted, so that the sample is the test's rows."""
    connection = database_connect(database, autocommit=False)
    try:
        cursor = connection.cursor()
        cursor.execute("DELETE FROM stripe_accounts WHERE id < 900000")
        at = "2026-01-05 10:00:00"
        for row_id, account_id, customer_id in rows:
            person = f"LegacyOther{row_id:011d}"
            cursor.execute(
                "INSERT INTO people (id, uuid, community_id, created_at, updated_at, username,"
                " email, given_name, family_name)"
                " VALUES (%s, %s, 1, %s, %s, %s, %s, 'Other', 'Person')",
                [person, uuid.uuid4().bytes, at, at, person.lower(), f"{person}@example.com"],
            )
            cursor.execute(
                "INSERT INTO stripe_accounts (id, person_id, community_id, stripe_seller_id,"
                " stripe_customer_id, created_at, updated_at)"
                " VALUES (%s, %s, 1, %s, %s, %s, %s)",
                [row_id, person, account_id, customer_id, at, at],
            )
        connection.commit()
    finally:
        connection.close()


def _account(sandbox: Any) -> str:
    account = sandbox.client().v1.accounts.create(
        params={
            "country": "US",
            "type": "express",
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
        }
    )
    sandbox.complete_onboarding(account.id)
    return str(account.id)


def _charge(sandbox: Any, amount: int, *, capture: bool = True) -> tuple[str, str]:
    """A platform charge (bypassPending: its funds are available at once for transfers)."""
    client = sandbox.client()
    intent = client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "payment_method": "pm_card_bypassPending",
            "confirm": True,
            "capture_method": "manual",
        }
    )
    if capture:
        intent = client.v1.payment_intents.capture(intent.id)
    return str(intent.id), str(intent.latest_charge)


def _transfer(sandbox: Any, amount: int, destination: str) -> str:
    transfer = sandbox.client().v1.transfers.create(
        params={"amount": amount, "currency": "usd", "destination": destination}
    )
    return str(transfer.id)


def _payout(sandbox: Any, account: str, amount: int) -> str:
    payout = sandbox.client().v1.payouts.create(
        params={"amount": amount, "currency": "usd"}, options={"stripe_account": account}
    )
    return str(payout.id)


def _captured(intent_id: str, charge_id: str, *, transfer_id: str | None = None) -> PortalPayment:
    return PortalPayment(
        CONFIRMED if transfer_id else PAID,
        intent_id,
        status="transfered" if transfer_id else "paid",
        intent_status="success",
        charge_id=charge_id,
        transfer_id=transfer_id,
    )


def _portal_with(
    name: str, payments: dict[int, PortalPayment], seller: str, customer: str
) -> LegacySourceFixture:
    """A generated portal without payments of its own, then ``payments``: transaction
    ``900_000 + number`` each, bought by one buyer (``customer``) from ``seller``."""
    source = generated("postgres", name, payments=0)
    for number, payment in payments.items():
        portal_transaction_write(
            source.database,
            payment=payment,
            account_id=seller,
            customer=customer,
            transaction_id=900_000 + number,
            with_people=number == 1,
        )
    return source


def test_every_stripe_id_is_read_and_each_difference_listed(sandbox: Any) -> None:
    seller = _account(sandbox)
    stranger = _account(sandbox)
    customer = str(sandbox.client().v1.customers.create(params={}).id)
    payments: dict[int, PortalPayment] = {}
    # 1: confirmed, transferred to the seller: Stripe agrees on all three ids.
    intent, charge = _charge(sandbox, SUM)
    payments[1] = _captured(intent, charge, transfer_id=_transfer(sandbox, NET, seller))
    # 2: confirmed, paid out on the seller's account (po_): agrees.
    intent, charge = _charge(sandbox, SUM)
    _transfer(sandbox, NET, seller)
    sandbox.advance(3 * 86_400)  # the transferred funds become available to pay out
    payments[2] = _captured(intent, charge, transfer_id=_payout(sandbox, seller, NET))
    # 3: the transfer moved 100 less than the seller's net.
    intent, charge = _charge(sandbox, SUM)
    payments[3] = _captured(intent, charge, transfer_id=_transfer(sandbox, NET - 100, seller))
    # 4: the transfer went to another account.
    intent, charge = _charge(sandbox, SUM)
    wrong_destination = _transfer(sandbox, NET, stranger)
    payments[4] = _captured(intent, charge, transfer_id=wrong_destination)
    # 5: paid per the portal, but the charge was never captured on Stripe.
    intent, charge = _charge(sandbox, SUM, capture=False)
    payments[5] = _captured(intent, charge)
    # 6: a charge id and a payout id Stripe does not know.
    intent, _ = _charge(sandbox, SUM)
    payments[6] = _captured(intent, MISSING_CHARGE, transfer_id=MISSING_PAYOUT)
    # 7: preauthorized: the authorization's charge is not captured, as expected.
    intent, charge = _charge(sandbox, SUM, capture=False)
    payments[7] = PortalPayment(PREAUTHORIZED, intent, charge_id=charge)
    # 8: a charge of another amount.
    intent, _ = _charge(sandbox, SUM)
    _, other_charge = _charge(sandbox, SUM - 1)
    payments[8] = _captured(intent, other_charge)

    source = _portal_with(f"stripe_check_{os.getpid()}", payments, seller, customer)
    # More of the portal's Stripe accounts rows: an account id Stripe does not know with a
    # customer deleted since, a customer id Stripe does not know, and an id that is not one
    # (quarantined by the import's checks, not read).
    deleted_customer = str(sandbox.client().v1.customers.create(params={}).id)
    sandbox.client().v1.customers.delete(deleted_customer)
    _stripe_accounts_write(
        source.database,
        [
            (900_003, MISSING_ACCOUNT, deleted_customer),
            (900_004, None, MISSING_CUSTOMER),
            (900_005, None, "customer-0042"),
        ],
    )
    legacy_import(database=source.database, options=ImportOptions(is_resumable=False))

    report = legacy_verify(database=source.database, stripe_sample=20)

    stripe_rows = [
        (
            row["section"].removeprefix("Stripe cross-check: "),
            row["key"],
            row["legacy"],
            row["gavel"],
        )
        for row in report.rows
        if row["section"].startswith("Stripe cross-check")
    ]
    agreement = [row for row in stripe_rows if row[1].startswith(("agree", "unanswered"))]
    assert agreement == [
        ("PaymentIntents", "agree (sample of 8 payments)", 8, 7),
        ("PaymentIntents", "unanswered (retry later)", 0, 0),
        ("charges", "agree (sample of 8 payments)", 8, 5),
        ("charges", "unanswered (retry later)", 0, 0),
        ("payments on sellers' accounts", "agree (sample of 8 payments)", 0, 0),
        ("payments on sellers' accounts", "unanswered (retry later)", 0, 0),
        ("transfers", "agree (sample of 8 payments)", 3, 1),
        ("transfers", "unanswered (retry later)", 0, 0),
        ("payouts", "agree (sample of 8 payments)", 2, 1),
        ("payouts", "unanswered (retry later)", 0, 0),
        ("connected accounts", "agree (sample of 4 Stripe accounts rows)", 2, 1),
        ("connected accounts", "unanswered (retry later)", 0, 0),
        ("customers", "agree (sample of 4 Stripe accounts rows)", 3, 1),
        ("customers", "unanswered (retry later)", 0, 0),
    ]
    differences = sorted(
        (section, key.split(" ", 1)[1])
        for section, key, _, _ in stripe_rows
        if not key.startswith(("agree", "unanswered"))
    )
    assert differences == sorted(
        [
            (
                "PaymentIntents",
                f"{payments[5].intent_id}: status requires_capture, legacy state paid;"
                f" received 0 != sum_cents {SUM}",
            ),
            ("charges", f"{payments[5].charge_id}: captured 0 != {SUM} (legacy state paid)"),
            ("charges", f"{MISSING_CHARGE}: missing in Stripe"),
            (
                "charges",
                f"{other_charge}: amount {SUM - 1} != sum_cents {SUM};"
                f" captured {SUM - 1} != {SUM} (legacy state paid)",
            ),
            ("transfers", f"{payments[3].transfer_id}: amount {NET - 100} != seller net {NET}"),
            (
                "transfers",
                f"{wrong_destination}: destination {stranger} != seller account {seller}",
            ),
            ("payouts", f"{MISSING_PAYOUT}: missing in Stripe"),
            ("connected accounts", f"{MISSING_ACCOUNT}: missing in Stripe"),
            ("customers", f"{deleted_customer}: deleted in Stripe"),
            ("customers", f"{MISSING_CUSTOMER}: missing in Stripe"),
        ]
    )
    stripe_differences = sum(
        1
        for row in report.rows
        if row["section"].startswith("Stripe cross-check") and row["difference"]
    )
    assert stripe_differences == 10 + 6  # each difference, plus each kind's agree row


def _destination_charge(sandbox: Any, seller: str) -> str:
    """A captured destination charge with the commissions as its application fee: the whole
    amount moves to the seller's account; the payment made there (``py_``) is returned."""
    client = sandbox.client()
    intent = client.v1.payment_intents.create(
        params={
            "amount": SUM,
            "currency": "usd",
            "payment_method": "pm_card_bypassPending",
            "confirm": True,
            "capture_method": "manual",
            "application_fee_amount": SUM - NET,
            "transfer_data": {"destination": seller},
        }
    )
    client.v1.payment_intents.capture(intent.id)
    charge = client.v1.charges.retrieve(str(intent.latest_charge), params={"expand": ["transfer"]})
    return str(charge.transfer.destination_payment)


def _transferred_payment(sandbox: Any, transfer_id: str) -> str:
    """The payment a transfer made on its destination account (``py_``)."""
    return str(sandbox.client().v1.transfers.retrieve(transfer_id).destination_payment)


def test_payments_on_the_sellers_account_are_read_on_that_account(sandbox: Any) -> None:
    seller = _account(sandbox)
    customer = str(sandbox.client().v1.customers.create(params={}).id)
    payments: dict[int, PortalPayment] = {}
    # Each payment names its own captured PaymentIntent, made first: its funds are what the
    # transfers after it move.
    # 1: a destination charge (the application fee is the commissions): the seller's account
    # received the whole sum; agrees.
    intent, _ = _charge(sandbox, SUM)
    payments[1] = _captured(intent, _destination_charge(sandbox, seller))
    # 2: a separate transfer of the seller's net, with its payment: both agree.
    intent, _ = _charge(sandbox, SUM)
    transfer = _transfer(sandbox, NET, seller)
    payments[2] = _captured(intent, _transferred_payment(sandbox, transfer), transfer_id=transfer)
    # 3: the payment was made by another transfer than the portal's.
    intent, _ = _charge(sandbox, 2 * SUM)
    made_by = _transfer(sandbox, NET, seller)
    other_transfer = _transfer(sandbox, NET, seller)
    mismatched = _transferred_payment(sandbox, made_by)
    payments[3] = _captured(intent, mismatched, transfer_id=other_transfer)
    # 4: a payment of 100 less than the seller's net.
    intent, _ = _charge(sandbox, SUM)
    short = _transferred_payment(sandbox, _transfer(sandbox, NET - 100, seller))
    payments[4] = _captured(intent, short)
    # 5: a payment Stripe does not know on the seller's account.
    intent, _ = _charge(sandbox, SUM)
    payments[5] = _captured(intent, "py_000000000000000000missing")
    # 6: the seller was paid while the portal says the payment is only authorized.
    _charge(sandbox, SUM)
    early = _transferred_payment(sandbox, _transfer(sandbox, NET, seller))
    intent, _ = _charge(sandbox, SUM, capture=False)
    payments[6] = PortalPayment(PREAUTHORIZED, intent, charge_id=early)

    source = _portal_with(f"stripe_check_py_{os.getpid()}", payments, seller, customer)
    legacy_import(database=source.database, options=ImportOptions(is_resumable=False))

    report = legacy_verify(database=source.database, stripe_sample=20)

    section = "Stripe cross-check: payments on sellers' accounts"
    rows = [
        (row["key"], row["legacy"], row["gavel"])
        for row in report.rows
        if row["section"] == section
    ]
    assert rows[:2] == [
        ("agree (sample of 6 payments)", 6, 2),
        ("unanswered (retry later)", 0, 0),
    ]
    assert sorted(key.split(" ", 1)[1] for key, _, _ in rows[2:]) == sorted(
        [
            f"{mismatched}: made by transfer {made_by}, the portal's {other_transfer}",
            f"{short}: amount {NET - 100} != {NET} or {SUM} (sum_cents or seller net)",
            "py_000000000000000000missing: missing in Stripe",
            f"{early}: a payment to the seller, legacy state preauthorized (not captured)",
        ]
    )
    transfers = [
        (row["key"], row["legacy"], row["gavel"])
        for row in report.rows
        if row["section"] == "Stripe cross-check: transfers"
    ]
    assert transfers[0] == ("agree (sample of 6 payments)", 2, 2)
    charges = [row for row in report.rows if row["section"] == "Stripe cross-check: charges"]
    assert charges[0]["legacy"] == 0  # no ``ch_`` in this portal
