"""Disputes (chargebacks): freeze the order, post the withdrawal, recover the sellers' share
by policy, post the outcome.

Policy (docs/payments.md, "Disputes"): with PAYMENTS_SELLERS_BEAR_DISPUTES the sellers bear
the disputed hammer share: a transferred seller's transfer is reversed when the dispute
opens (their payable may go negative: flagged), an untransferred seller's payable is charged
if the dispute is lost; a won dispute gives back what was reversed. The platform bears its
own share, Stripe's dispute fee, and everything if sellers do not bear disputes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from gavel.common.errors import ConflictError, NotFoundError, ServiceError
from gavel.common.outbox import outbox_enqueue
from gavel.gateway import balance as gateway_balance
from gavel.gateway import disputes as gateway_disputes
from gavel.gateway.errors import GatewayError
from gavel.gateway.payment_types import StripeDispute
from gavel.ledger import accounts
from gavel.ledger.services import Line
from gavel.payments import metrics
from gavel.payments.fees import seller_shares
from gavel.payments.lock_objects import dispute_lock, order_lock
from gavel.payments.models import Dispute, Order, OrderLine, SellerTransfer, TransferReversal
from gavel.payments.postings import (
    BalanceLink,
    credit,
    debit,
    linked_balance_transaction_ids,
    money_post,
)
from gavel.payments.services.events import audit_record, event_record
from gavel.payments.services.refunds import line_refundable
from gavel.payments.services.transfers import seller_balance_flag_if_negative
from gavel.payments.states import Operation, order_transition, order_transition_allowed
from gavel.users.models import User

S = Order.Status

# Stripe's dispute statuses that close a dispute, and what each means for us. An inquiry
# (``warning_*``) withdraws nothing; ``warning_closed`` ends it without a chargeback, like a
# win with no money to reinstate.
CLOSED_OUTCOMES = {
    "won": Dispute.Outcome.WON,
    "lost": Dispute.Outcome.LOST,
    "warning_closed": Dispute.Outcome.WON,
}


def _status_is_inquiry(stripe_status: str) -> bool:
    return stripe_status.startswith("warning_")


def _unlinked_dispute_transactions(dispute_id: str) -> list[BalanceLink]:
    linked = linked_balance_transaction_ids(source_id=dispute_id)
    return [
        BalanceLink(bt)
        for bt in gateway_balance.balance_transactions_list(source_id=dispute_id)
        if bt.id not in linked
    ]


def dispute_opened_apply(*, stripe_dispute: StripeDispute, stripe_event_id: str = "") -> bool:
    """charge.dispute.created (and funds_withdrawn): idempotent."""
    order_id = (
        Order.objects.filter(stripe_charge_id=stripe_dispute.charge_id or "-")
        .values_list("pk", flat=True)
        .first()
    )
    if order_id is None:
        event_record(
            order=None,
            type="dispute_unmatched",
            amount_minor=stripe_dispute.amount_minor,
            currency=stripe_dispute.currency,
            stripe_object_id=stripe_dispute.id,
            stripe_event_id=stripe_event_id,
            applied=False,
        )
        return False
    reversal_ids: list[int] = []
    with transaction.atomic():
        order = order_lock(order_id=order_id).get()
        # Under the order's lock: a dispute seen before (a replayed or late
        # charge.dispute.created, even after it closed) never opens the order again.
        existing = Dispute.objects.filter(stripe_dispute_id=stripe_dispute.id).first()
        first_seen = existing is None
        if existing is None and _dispute_settled_by_import(order):
            # The import holds this dispute's whole story, money included (a charge has one
            # dispute): an event for it (replayed from the event store) is recorded only.
            event_record(
                order=order,
                type="dispute_settled_by_import",
                amount_minor=stripe_dispute.amount_minor,
                stripe_object_id=stripe_dispute.id,
                stripe_event_id=stripe_event_id,
                applied=False,
                message="the legacy import posted this dispute and its outcome",
            )
            return False
        if existing is None:
            existing = Dispute.objects.create(
                order=order,
                stripe_dispute_id=stripe_dispute.id,
                stripe_status=stripe_dispute.status,
                amount_minor=stripe_dispute.amount_minor,
                currency=stripe_dispute.currency,
                reason=stripe_dispute.reason or "",
                evidence_due_at=datetime.fromtimestamp(stripe_dispute.evidence_due_by, tz=UTC)
                if stripe_dispute.evidence_due_by
                else None,
                withdrawal_booked_minor=_withdrawal_booked_by_import(order),
            )
        dispute = dispute_lock(dispute_id=existing.pk).get()
        withdrawn = False
        withdrawals = [
            link
            for link in _unlinked_dispute_transactions(stripe_dispute.id)
            if link.transaction.amount_minor < 0
        ]
        if withdrawals:
            currency = order.currency
            booked = dispute.withdrawal_booked_minor
            withdrawn = money_post(
                reference=f"dispute:{stripe_dispute.id}:withdrawal",
                kind="dispute_withdrawal",
                lines=[
                    debit(
                        accounts.DISPUTES_PENDING,
                        -sum(link.transaction.amount_minor for link in withdrawals) - booked,
                        currency,
                    ),
                    debit(
                        accounts.DISPUTE_FEES,
                        sum(link.transaction.fee_minor for link in withdrawals),
                        currency,
                    ),
                    # What the import already posted (Dr disputes:pending, Cr stripe balance)
                    # is replaced by the balance transactions' own lines, not posted twice.
                    debit(accounts.PLATFORM_STRIPE_BALANCE, booked, currency),
                ],
                links=withdrawals,
                description=f"Dispute {stripe_dispute.id} on order {order.pk}",
            )
        applied = first_seen and order_transition_allowed(
            order=order, operation=Operation.DISPUTE_OPEN, to_status=S.DISPUTED
        )
        if applied:
            order_transition(
                order=order,
                operation=Operation.DISPUTE_OPEN,
                to_status=S.DISPUTED,
                reason=f"{stripe_dispute.id}: {stripe_dispute.reason or ''}",
            )
            Order.objects.filter(pk=order.pk).update(disputed_minor=stripe_dispute.amount_minor)
            if settings.PAYMENTS_SELLERS_BEAR_DISPUTES and not _status_is_inquiry(
                stripe_dispute.status
            ):
                reversal_ids = _dispute_reversals_plan(order, dispute)
            metrics.DISPUTES.labels(event="opened").inc()
        elif withdrawn and not first_seen:
            # An inquiry withdraws nothing (no balance transaction); money first moves when it
            # escalates to a chargeback, and only then do the sellers bear their share.
            Dispute.objects.filter(pk=dispute.pk).update(stripe_status=stripe_dispute.status)
            if (
                settings.PAYMENTS_SELLERS_BEAR_DISPUTES
                and dispute.outcome == Dispute.Outcome.OPEN
                and order.status == S.DISPUTED
                and not dispute.reversals.exists()
            ):
                reversal_ids = _dispute_reversals_plan(order, dispute)
        event_record(
            order=order,
            type="dispute_opened",
            amount_minor=stripe_dispute.amount_minor,
            stripe_object_id=stripe_dispute.id,
            stripe_event_id=stripe_event_id,
            applied=applied,
        )
        for reversal_id in reversal_ids:
            outbox_enqueue(
                task_name="gavel.payments.tasks.reversal_execute",
                kwargs={"reversal_id": reversal_id},
                queue="payments",
            )
    return applied


def _withdrawal_booked_by_import(order: Order) -> int:
    """The withdrawal a legacy import already posted for an order it brought in ``disputed``
    (the ledger plan's ``dispute_opened``): adopted by the order's first dispute, 0 otherwise."""
    if order.kind != Order.Kind.LEGACY or order.status != S.DISPUTED or order.disputes.exists():
        return 0
    return order.disputed_minor


def _dispute_settled_by_import(order: Order) -> bool:
    """A legacy order imported after its dispute closed (the portal's ``disputed`` step in its
    history, then ``refunded`` or ``dismissed``): the import posted the withdrawal and the
    outcome, and Gavel never opened a dispute for it."""
    return (
        order.kind == Order.Kind.LEGACY
        and order.status != S.DISPUTED
        and not order.disputes.exists()
        and order.transitions.filter(to_status=S.DISPUTED).exists()
    )


def _dispute_reversals_plan(order: Order, dispute: Dispute) -> list[int]:
    """Reverse the transferred sellers' share of the disputed amount."""
    lines = list(order.lines.order_by("pk"))
    shares = seller_shares(dispute.amount_minor, [line_refundable(line) for line in lines])
    reversal_ids = []
    for line, share in zip(lines, shares, strict=True):
        transfer = (
            line.transfers.filter(status=SellerTransfer.Status.SUCCEEDED)
            .exclude(kind=SellerTransfer.Kind.REINSTATEMENT)
            .order_by("pk")
            .first()
        )
        if transfer is None or share <= 0:
            continue
        reversed_so_far = (
            transfer.reversals.exclude(status=TransferReversal.Status.FAILED).aggregate(
                total=Sum("amount_minor")
            )["total"]
            or 0
        )
        amount = min(share, transfer.amount_minor - reversed_so_far)
        if amount > 0:
            reversal_ids.append(
                TransferReversal.objects.create(
                    transfer=transfer, dispute=dispute, amount_minor=amount, currency=order.currency
                ).pk
            )
    return reversal_ids


def dispute_closed_apply(*, stripe_dispute: StripeDispute, stripe_event_id: str = "") -> bool:
    """charge.dispute.closed: won gives the funds (and the sellers' share) back; lost books
    the loss. Idempotent."""
    dispute_pk = (
        Dispute.objects.filter(stripe_dispute_id=stripe_dispute.id)
        .values_list("pk", flat=True)
        .first()
    )
    if dispute_pk is None:
        dispute_opened_apply(stripe_dispute=stripe_dispute, stripe_event_id=stripe_event_id)
        dispute_pk = (
            Dispute.objects.filter(stripe_dispute_id=stripe_dispute.id)
            .values_list("pk", flat=True)
            .first()
        )
        if dispute_pk is None:
            return False
    outcome = CLOSED_OUTCOMES.get(stripe_dispute.status)
    transfer_ids: list[int] = []
    order_id = Dispute.objects.filter(pk=dispute_pk).values_list("order_id", flat=True)[0]
    with transaction.atomic():
        order = order_lock(order_id=order_id).get()
        dispute = dispute_lock(dispute_id=dispute_pk).get()
        if outcome is None or dispute.outcome != Dispute.Outcome.OPEN:
            Dispute.objects.filter(pk=dispute.pk).update(stripe_status=stripe_dispute.status)
            event_record(
                order=order,
                type=f"dispute_{stripe_dispute.status}",
                stripe_object_id=stripe_dispute.id,
                stripe_event_id=stripe_event_id,
                applied=False,
            )
            return False
        if outcome == Dispute.Outcome.WON:
            transfer_ids = _dispute_won(order, dispute, reason=stripe_dispute.status)
        else:
            _dispute_lost(order, dispute)
        dispute.outcome = outcome
        dispute.stripe_status = stripe_dispute.status
        dispute.save(update_fields=["outcome", "stripe_status", "updated_at"])
        event_record(
            order=order,
            type=f"dispute_{outcome}",
            amount_minor=dispute.amount_minor,
            stripe_object_id=stripe_dispute.id,
            stripe_event_id=stripe_event_id,
        )
        metrics.DISPUTES.labels(event=outcome).inc()
    from gavel.payments.services.transfers import transfer_execute

    for transfer_id in transfer_ids:
        transfer_execute(transfer_id=transfer_id)
    return True


def _dispute_won(order: Order, dispute: Dispute, *, reason: str) -> list[int]:
    currency = order.currency
    reinstated = [
        link
        for link in _unlinked_dispute_transactions(dispute.stripe_dispute_id)
        if link.transaction.amount_minor > 0
    ]
    if reinstated:
        money_post(
            reference=f"dispute:{dispute.stripe_dispute_id}:reinstated",
            kind="dispute_won",
            lines=[
                credit(
                    accounts.DISPUTES_PENDING,
                    sum(link.transaction.amount_minor for link in reinstated),
                    currency,
                ),
                credit(
                    accounts.DISPUTE_FEES,
                    -sum(link.transaction.fee_minor for link in reinstated),
                    currency,
                ),
            ],
            links=reinstated,
            description=f"Dispute {dispute.stripe_dispute_id} won",
        )
    transfer_ids = []
    for reversal in dispute.reversals.filter(
        status=TransferReversal.Status.SUCCEEDED
    ).select_related("transfer"):
        transfer_ids.append(
            SellerTransfer.objects.create(
                line_id=reversal.transfer.line_id,
                kind=SellerTransfer.Kind.REINSTATEMENT,
                amount_minor=reversal.amount_minor,
                currency=currency,
                destination_account_id=reversal.transfer.destination_account_id,
            ).pk
        )
        Dispute.objects.filter(pk=dispute.pk).update(
            recovered_from_sellers_minor=F("recovered_from_sellers_minor") - reversal.amount_minor
        )
    if order.refunded_minor >= order.captured_minor:
        to_status = S.REFUNDED
    elif order.refunded_minor > 0:
        to_status = S.PARTIALLY_REFUNDED
    else:
        to_status = S.CAPTURED
    order_transition(
        order=order,
        operation=Operation.DISPUTE_WIN,
        to_status=to_status,
        reason=f"dispute {reason}",
    )
    Order.objects.filter(pk=order.pk).update(disputed_minor=0)
    return transfer_ids


def _dispute_lost(order: Order, dispute: Dispute) -> None:
    currency = order.currency
    lines: list[Line] = []
    charged_total = 0
    if settings.PAYMENTS_SELLERS_BEAR_DISPUTES:
        order_lines = list(order.lines.order_by("pk"))
        shares = seller_shares(
            dispute.amount_minor, [line_refundable(line) for line in order_lines]
        )
        for line, share in zip(order_lines, shares, strict=True):
            transferred = line.transfers.filter(status=SellerTransfer.Status.SUCCEEDED).exists()
            if transferred or share <= 0:
                continue  # a transferred seller's share was reversed when the dispute opened
            lines.append(debit(accounts.seller_payable(line.seller_account_id), share, currency))
            charged_total += share
            OrderLine.objects.filter(pk=line.pk).update(
                disputed_seller_minor=F("disputed_seller_minor") + share
            )
    planned_reversals = (
        dispute.reversals.exclude(status=TransferReversal.Status.FAILED).aggregate(
            total=Sum("amount_minor")
        )["total"]
        or 0
    )
    loss = dispute.amount_minor - planned_reversals - charged_total
    lines += [
        credit(accounts.DISPUTES_PENDING, charged_total + loss, currency),
        debit(accounts.DISPUTE_LOSSES, loss, currency),
    ]
    money_post(
        reference=f"dispute:{dispute.stripe_dispute_id}:lost",
        kind="dispute_lost",
        lines=lines,
        description=f"Dispute {dispute.stripe_dispute_id} lost",
    )
    Dispute.objects.filter(pk=dispute.pk).update(
        recovered_from_sellers_minor=F("recovered_from_sellers_minor") + charged_total
    )
    order_transition(
        order=order, operation=Operation.DISPUTE_LOSE, to_status=S.DISPUTE_LOST, reason="lost"
    )
    for line in order.lines.order_by("pk"):
        seller_balance_flag_if_negative(
            account_id=line.seller_account_id, currency=currency, dispute_id=dispute.pk
        )


EVIDENCE_FIELDS = (
    "product_description",
    "customer_communication",
    "shipping_carrier",
    "shipping_tracking_number",
    "shipping_date",
    "uncategorized_text",
    "refund_refusal_explanation",
)


def dispute_evidence_submit(
    *, dispute_id: int, actor: User, evidence: dict[str, str], submit: bool = True
) -> Dispute:
    """Staff submit evidence to Stripe (audited). Only text fields Gavel knows are sent."""
    unknown = sorted(set(evidence) - set(EVIDENCE_FIELDS))
    if unknown or not evidence:
        raise ServiceError(
            "Evidence needs at least one known field.",
            code="evidence_invalid",
            fields={name: ["Unknown evidence field."] for name in unknown}
            or {"evidence": ["Empty."]},
        )
    dispute = Dispute.objects.filter(pk=dispute_id).first()
    if dispute is None:
        raise NotFoundError("No such dispute.", code="dispute_not_found")
    if dispute.outcome != Dispute.Outcome.OPEN:
        raise ConflictError("This dispute is closed.", code="dispute_closed")
    with transaction.atomic():
        entry = audit_record(
            actor=actor,
            action="dispute_evidence_submit",
            object_type="dispute",
            object_id=dispute.pk,
            data={"fields": sorted(evidence), "submit": submit},
        )
    try:
        stripe_dispute = gateway_disputes.dispute_evidence_submit(
            operation_id=entry.pk,
            dispute_id=dispute.stripe_dispute_id,
            evidence=evidence,
            submit=submit,
        )
    except GatewayError as error:
        raise ServiceError(
            f"Stripe refused the evidence: {error.message}",
            code="evidence_refused",
            status_code=502,
        ) from error
    Dispute.objects.filter(pk=dispute.pk).update(
        stripe_status=stripe_dispute.status,
        evidence_submitted_at=timezone.now() if submit else dispute.evidence_submitted_at,
    )
    event_record(
        order=dispute.order,
        type="dispute_evidence_submitted",
        stripe_object_id=dispute.stripe_dispute_id,
    )
    dispute.refresh_from_db()
    return dispute


def order_disputes_sync(*, order_id: int) -> int:
    """Re-read the order's disputes from Stripe and apply them (a lost webhook, or the
    janitor): returns how many disputes Stripe has for the charge."""
    order = Order.objects.filter(pk=order_id).first()
    if order is None or not order.stripe_charge_id:
        return 0
    found = gateway_disputes.disputes_for_charge(charge_id=order.stripe_charge_id)
    for stripe_dispute in found:
        dispute_opened_apply(stripe_dispute=stripe_dispute)
        if stripe_dispute.status in CLOSED_OUTCOMES:
            dispute_closed_apply(stripe_dispute=stripe_dispute)
    return len(found)


def disputes_open_refresh(*, limit: int = 100) -> int:
    """The janitor's pass over open disputes: apply any Stripe has closed meanwhile."""
    refreshed = 0
    for dispute in Dispute.objects.filter(outcome=Dispute.Outcome.OPEN).order_by("pk")[:limit]:
        stripe_dispute = gateway_disputes.dispute_retrieve(dispute_id=dispute.stripe_dispute_id)
        if stripe_dispute.status in CLOSED_OUTCOMES:
            # First what was withdrawn meanwhile (an inquiry escalated to a chargeback).
            dispute_opened_apply(stripe_dispute=stripe_dispute)
            dispute_closed_apply(stripe_dispute=stripe_dispute)
            refreshed += 1
    return refreshed
