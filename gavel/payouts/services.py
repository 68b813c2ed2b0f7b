"""Payouts: a run pays out each seller's available Stripe balance (never more than the ledger
says the platform owes them); payout.paid / payout.failed are applied; a payout that failed
at the bank blocks the account's payouts until its bank account changes, and the seller is
told."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from gavel.common.outbox import outbox_enqueue
from gavel.gateway import balance as gateway_balance
from gavel.gateway import payouts as gateway_payouts
from gavel.gateway.errors import GatewayError, GatewayFinalError, GatewayRetryableError
from gavel.gateway.payment_types import StripePayout
from gavel.ledger import accounts
from gavel.payments.models import OrderLine
from gavel.payments.postings import BalanceLink, credit, debit, money_post
from gavel.payments.services.transfers import seller_owed_minor
from gavel.payouts.lock_objects import payout_account_lock, payout_lock
from gavel.payouts.models import Payout, PayoutAccount, PayoutRun

logger = logging.getLogger(__name__)

P = Payout.Status
OPEN = (P.CREATING, P.UNKNOWN)
# A payout's status only moves forward along this order; failed and canceled end it (a paid
# payout may still fail: banks return payouts).
RANK: dict[str, int] = {P.CREATING: 0, P.UNKNOWN: 0, P.PENDING: 1, P.IN_TRANSIT: 2, P.PAID: 3}
ENDED = (P.FAILED, P.CANCELED)


@dataclass(frozen=True, slots=True)
class PayoutRunResult:
    run_id: int
    accounts_seen: int
    payouts_created: int


def payout_accounts() -> list[str]:
    """Every connected account the platform has ever owed money."""
    return sorted(set(OrderLine.objects.values_list("seller_account_id", flat=True).distinct()))


def payout_run(*, now: datetime | None = None) -> PayoutRunResult:
    run = PayoutRun.objects.create(started_at=now or timezone.now())
    accounts_seen = created = 0
    for account_id in payout_accounts():
        accounts_seen += 1
        try:
            created += len(payouts_for_account_create(account_id=account_id, run=run))
        except GatewayError as error:
            logger.warning(
                "payout run: account skipped", extra={"account": account_id, "error": str(error)}
            )
    PayoutRun.objects.filter(pk=run.pk).update(
        finished_at=timezone.now(), accounts_seen=accounts_seen, payouts_created=created
    )
    return PayoutRunResult(run.pk, accounts_seen, created)


def _manual_schedule_ensure(account_id: str) -> None:
    """Once per account: Stripe must not pay out on its own schedule."""
    PayoutAccount.objects.bulk_create([PayoutAccount(account_id=account_id)], ignore_conflicts=True)
    row = PayoutAccount.objects.get(account_id=account_id)
    if row.manual_schedule_set_at is None:
        gateway_payouts.payout_schedule_set_manual(operation_id=row.pk, account_id=account_id)
        PayoutAccount.objects.filter(pk=row.pk).update(manual_schedule_set_at=timezone.now())


def _payouts_allowed(account_id: str) -> bool:
    """Connect's verdict on the seller (requirements due, payouts disabled by Stripe)."""
    try:
        allowed = import_string("gavel.connect.selectors.seller_payouts_allowed")
    except ImportError:
        return True
    line = OrderLine.objects.filter(seller_account_id=account_id).select_related("seller").first()
    return line is None or bool(allowed(user=line.seller))


def _blocked_by_bank(account_id: str) -> bool:
    failed = (
        Payout.objects.filter(account_id=account_id, blocks_until_bank_changes=True)
        .order_by("-pk")
        .first()
    )
    if failed is None:
        return False
    bank = gateway_payouts.default_bank_account_id(account_id=account_id)
    if bank and bank != failed.destination:
        Payout.objects.filter(account_id=account_id, blocks_until_bank_changes=True).update(
            blocks_until_bank_changes=False
        )
        return False
    return True


def payouts_for_account_create(*, account_id: str, run: PayoutRun | None = None) -> list[int]:
    """Pay out the account's available balance in each currency (at most what it is owed)."""
    if Payout.objects.filter(account_id=account_id, status__in=OPEN).exists():
        return []
    if not _payouts_allowed(account_id) or _blocked_by_bank(account_id):
        return []
    _manual_schedule_ensure(account_id)
    balance = gateway_balance.balance_retrieve(account_id=account_id)
    created = []
    for currency, available in sorted(balance.available_minor.items()):
        try:
            with transaction.atomic():
                # Runs of one account take turns here, and read what it is owed only when no
                # payout of another is open: a payout leaves `creating` in the commit that posts
                # its debit, so an amount read earlier could pay the same money twice.
                payout_account_lock(account_id=account_id).get()
                if Payout.objects.filter(
                    account_id=account_id, currency=currency, status__in=OPEN
                ).exists():
                    continue
                owed = seller_owed_minor(account_id=account_id, currency=currency)
                amount = min(available, owed)
                if amount < settings.PAYOUTS_MINIMUM_MINOR:
                    continue
                payout = Payout.objects.create(
                    account_id=account_id, run=run, amount_minor=amount, currency=currency
                )
        except IntegrityError:
            continue  # another run holds an open payout for this account and currency
        created.append(payout.pk)
        payout_execute(payout_id=payout.pk)
    return created


def payout_execute(*, payout_id: int) -> Payout:
    payout = Payout.objects.get(pk=payout_id)
    if payout.status not in OPEN:
        return payout
    try:
        stripe_payout = gateway_payouts.payout_create(
            operation_id=payout.pk,
            account_id=payout.account_id,
            amount_minor=payout.amount_minor,
            currency=payout.currency,
            metadata={"gavel_payout_id": str(payout.pk)},
        )
    except GatewayRetryableError as error:
        if error.outcome_unknown:
            Payout.objects.filter(pk=payout.pk, status=P.CREATING).update(status=P.UNKNOWN)
        payout.refresh_from_db()
        return payout
    except GatewayFinalError as error:
        Payout.objects.filter(pk=payout.pk, status__in=OPEN).update(
            status=P.FAILED,
            failure_code=(error.code or "failed")[:100],
            failure_message=error.message[:500],
        )
        payout.refresh_from_db()
        return payout
    return payout_apply(payout_id=payout.pk, stripe_payout=stripe_payout)


def payout_apply(*, payout_id: int, stripe_payout: StripePayout) -> Payout:
    """Apply a payout's state from Stripe (our call, a webhook, the janitor). Forward only."""
    notify = False
    with transaction.atomic():
        payout = payout_lock(payout_id=payout_id).get()
        new_status = stripe_payout.status
        if new_status not in P.values or payout.status in ENDED:
            return payout
        if payout.stripe_payout_id and payout.stripe_payout_id != stripe_payout.id:
            return payout  # another Stripe payout that names this one: not its state
        stale = new_status in RANK and RANK[new_status] <= RANK.get(payout.status, -1)
        if stale and payout.stripe_payout_id:
            return payout
        if not payout.stripe_payout_id:
            payout.stripe_payout_id = stripe_payout.id
            payout.destination = stripe_payout.destination or ""
            _payout_post(payout, stripe_payout)
        if new_status in ENDED:
            _payout_failure_post(payout, stripe_payout)
            payout.failure_code = (stripe_payout.failure_code or "")[:100]
            payout.failure_message = (stripe_payout.failure_message or "")[:500]
            payout.blocks_until_bank_changes = new_status == P.FAILED
            notify = new_status == P.FAILED
        payout.status = new_status
        payout.save()
        if notify:
            outbox_enqueue(
                task_name="gavel.payouts.tasks.payout_failed_notify",
                kwargs={"payout_id": payout.pk},
                queue="default",
            )
    return payout


def _payout_post(payout: Payout, stripe_payout: StripePayout) -> None:
    assert stripe_payout.balance_transaction_id
    bt = gateway_balance.balance_transaction_retrieve(
        balance_transaction_id=stripe_payout.balance_transaction_id, account_id=payout.account_id
    )
    money_post(
        reference=f"payout:{payout.pk}",
        kind="payout",
        lines=[
            debit(accounts.seller_payable(payout.account_id), payout.amount_minor, payout.currency)
        ],
        links=[BalanceLink(bt, payout.account_id)],
        description=f"Payout {stripe_payout.id} of {payout.account_id}",
    )


def _payout_failure_post(payout: Payout, stripe_payout: StripePayout) -> None:
    assert stripe_payout.failure_balance_transaction_id
    bt = gateway_balance.balance_transaction_retrieve(
        balance_transaction_id=stripe_payout.failure_balance_transaction_id,
        account_id=payout.account_id,
    )
    money_post(
        reference=f"payout:{payout.pk}:returned",
        kind="payout_returned",
        lines=[
            credit(accounts.seller_payable(payout.account_id), payout.amount_minor, payout.currency)
        ],
        links=[BalanceLink(bt, payout.account_id)],
        description=f"Payout {stripe_payout.id} {stripe_payout.status}",
    )


def payout_failed_notify(*, payout_id: int) -> bool:
    """Tell the seller their payout failed and that updating their bank details retries it
    (a structured log line for the notification pipeline, and the earnings API shows it)."""
    updated = Payout.objects.filter(pk=payout_id, seller_notified_at__isnull=True).update(
        seller_notified_at=timezone.now()
    )
    if updated:
        payout = Payout.objects.get(pk=payout_id)
        logger.info(
            "seller notified: payout failed",
            extra={
                "account": payout.account_id,
                "payout_id": payout.pk,
                "failure_code": payout.failure_code,
            },
        )
    return bool(updated)


def payouts_janitor_run(*, now: datetime | None = None, limit: int = 100) -> int:
    """Settle payouts left creating/unknown: find them by metadata, else re-send with the
    same key."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PAYMENTS_JANITOR_MIN_AGE_SECONDS)
    stuck = list(
        Payout.objects.filter(status=P.UNKNOWN).union(
            Payout.objects.filter(status=P.CREATING, created_at__lte=cutoff)
        )[:limit]
    )
    settled = 0
    # Payouts on their way are re-read too, in case payout.paid / payout.failed was lost.
    for payout in Payout.objects.filter(
        status__in=(P.PENDING, P.IN_TRANSIT), stripe_payout_id__isnull=False
    ).order_by("pk")[:limit]:
        assert payout.stripe_payout_id
        try:
            stripe_payout = gateway_payouts.payout_retrieve(
                account_id=payout.account_id, payout_id=payout.stripe_payout_id
            )
            if stripe_payout.status != payout.status:
                # applying it may read a balance transaction: Stripe's silence there leaves
                # this payout for the next pass (its entry rolled back), not the others
                payout_apply(payout_id=payout.pk, stripe_payout=stripe_payout)
                settled += 1
        except GatewayError as error:
            logger.warning(
                "payout janitor: no answer yet",
                extra={"payout_id": payout.pk, "error": str(error)},
            )
    for payout in stuck:
        try:
            found = [
                candidate
                for candidate in gateway_payouts.payouts_for_account(account_id=payout.account_id)
                if candidate.metadata.get("gavel_payout_id") == str(payout.pk)
            ]
            if found:
                payout_apply(payout_id=payout.pk, stripe_payout=found[0])
            else:
                payout_execute(payout_id=payout.pk)
            settled += 1
        except GatewayError as error:
            logger.warning("payout janitor: no answer yet", extra={"error": str(error)})
    return settled
