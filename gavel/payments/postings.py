"""Posting payment movements to the ledger with the Stripe balance transactions they mirror.

Each call posts one balanced entry. The lines for ``platform:stripe_balance`` and
``connected_balance:<acct>`` are made from the balance transactions themselves (their
``net``), and each balance transaction is linked to the entry, which is what reconciliation
compares with Stripe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from gavel.gateway.payment_types import StripeBalanceTransaction
from gavel.ledger import accounts
from gavel.ledger.accounts import AccountSpec
from gavel.ledger.models import BalanceTransactionLink
from gavel.ledger.services import Line, entry_post


def debit(spec: AccountSpec, amount_minor: int, currency: str) -> Line:
    return Line(spec.code, spec.kind, amount_minor, currency)


def credit(spec: AccountSpec, amount_minor: int, currency: str) -> Line:
    return Line(spec.code, spec.kind, -amount_minor, currency)


@dataclass(frozen=True, slots=True)
class BalanceLink:
    """A balance transaction of the platform (``account_id`` None) or a connected account."""

    transaction: StripeBalanceTransaction
    account_id: str | None = None

    def line(self) -> Line:
        spec = (
            accounts.connected_balance(self.account_id)
            if self.account_id
            else accounts.PLATFORM_STRIPE_BALANCE
        )
        return debit(spec, self.transaction.net_minor, self.transaction.currency)


def money_post(
    *,
    reference: str,
    kind: str,
    lines: Sequence[Line],
    links: Sequence[BalanceLink] = (),
    description: str = "",
) -> bool:
    """Post one entry (lines plus one line per balance transaction); False on a replay or
    when every line is zero (nothing moved)."""
    if not links and all(line.amount_minor == 0 for line in lines):
        return False
    with transaction.atomic():
        entry, created = entry_post(
            reference=reference,
            kind=kind,
            lines=[*lines, *(link.line() for link in links)],
            description=description,
        )
        if created and links:
            BalanceTransactionLink.objects.bulk_create(
                BalanceTransactionLink(
                    balance_transaction_id=link.transaction.id,
                    stripe_account=link.account_id or "",
                    entry=entry,
                    source_id=link.transaction.source_id or "",
                    type=link.transaction.type,
                    amount_minor=link.transaction.net_minor,
                    currency=link.transaction.currency,
                    stripe_created_at=link.transaction.created_at,
                )
                for link in links
            )
    return created


def linked_balance_transaction_ids(*, source_id: str) -> set[str]:
    return set(
        BalanceTransactionLink.objects.filter(source_id=source_id).values_list(
            "balance_transaction_id", flat=True
        )
    )
