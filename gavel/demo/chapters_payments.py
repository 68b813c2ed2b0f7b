"""Demo chapter: a buyer wins two lots from two sellers; the money is charged, split into
transfers, partly refunded, paid out and disputed, and the books reconcile at every step."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework_simplejwt.tokens import RefreshToken

from gavel.common.money import Money

if TYPE_CHECKING:
    from gavel.demo.story import StoryContext

WAIT_SECONDS = 3.0
PLATFORM_EVENTS = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "payment_intent.canceled",
    "charge.dispute.created",
    "charge.dispute.closed",
    "charge.dispute.funds_reinstated",
]
CONNECT_EVENTS = ["payout.paid", "payout.failed", "payout.updated"]


def usd(amount_minor: int) -> str:
    return Money(amount_minor, "USD").format()


def _books(context: StoryContext, moment: str) -> None:
    from gavel.ledger.reconciliation import reconciliation_run
    from gavel.ledger.selectors import ledger_is_balanced

    report = reconciliation_run()
    balanced = ledger_is_balanced()
    context.cast.setdefault("books_clean", True)
    context.cast["books_clean"] = context.cast["books_clean"] and balanced and report.is_clean
    verdict = "balanced" if balanced else "NOT balanced"
    context.narrator.detail(
        f"Books {moment}: ledger {verdict}; reconciled with Stripe across "
        f"{len(report.scopes)} balances, {report.transactions_compared} balance transactions, "
        f"{len(report.differences)} differences."
    )
    for difference in report.differences:
        context.narrator.detail(f"  difference: {difference.describe()}")


def _wait(
    context: StoryContext,
    predicate: Callable[[], bool],
    fallback: Callable[[], object] | None = None,
    what: str = "Stripe's webhook",
) -> bool:
    """Wait for the worker (or a webhook) to apply something; else the fallback re-reads it
    from Stripe, as the janitor would, and the story says so."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    if fallback is not None:
        context.narrator.detail(f"{what} was not applied in time; Gavel re-read Stripe instead.")
        fallback()
    return predicate()


def money_webhooks_register(context: StoryContext) -> None:
    """Stripe's money events to Gavel's webhook endpoints (signed, in process)."""
    from gavel.demo.chapters_connect import _deliver_to_gavel

    _deliver_to_gavel(context)
    client = context.sandbox.client(settings.STRIPE_SECRET_KEY)
    client.v1.webhook_endpoints.create(
        params={"url": "http://127.0.0.1:8000/webhooks/stripe/", "enabled_events": PLATFORM_EVENTS}
    )
    client.v1.webhook_endpoints.create(
        params={
            "url": "http://127.0.0.1:8000/webhooks/stripe/connect/",
            "enabled_events": CONNECT_EVENTS,
            "connect": True,
        }
    )


def chapter_payments(context: StoryContext) -> None:
    from gavel.payments.models import Order, SellerTransfer, TransferReversal
    from gavel.payments.services.disputes import order_disputes_sync
    from gavel.payments.services.janitor import janitor_run
    from gavel.payouts.models import Payout
    from gavel.payouts.services import payout_run, payouts_janitor_run
    from gavel.users.models import User

    narrator = context.narrator
    narrator.chapter("Sam pays for both lots: charge, split, refund, payout, dispute")
    sale_ids: list[int] = context.cast["sale_ids"]
    narrator.step(
        f"Payments picks up sales #{', #'.join(str(sale_id) for sale_id in sale_ids)} from the "
        "auctions app and charges Sam's saved card off-session, once for both lots."
    )

    def order_of_sam() -> Order | None:
        return Order.objects.filter(buyer__email="sam@example.com").first()

    def charged() -> bool:
        order = order_of_sam()
        return order is not None and order.status == Order.Status.CAPTURED

    _wait(context, charged, what="The payments worker")
    order_row = order_of_sam()
    assert order_row is not None
    summary = context.api("GET", f"/api/v1/payments/orders/{order_row.pk}/", as_user="sam")
    narrator.step(
        f"One checkout, one off-session charge of {usd(summary['total_minor'])}: "
        f"hammer {usd(summary['subtotal_minor'])} + buyer's premium "
        f"{usd(summary['buyers_premium_minor'])} (status {summary['status']})."
    )
    order_row.refresh_from_db()
    narrator.detail(
        f"Stripe's fee, read from the charge's balance transaction: "
        f"{usd(order_row.stripe_fee_minor)}. Commission kept from the sellers: "
        f"{usd(order_row.commission_minor)}."
    )
    _books(context, "after the charge")

    context.api(
        "POST", f"/api/v1/payments/orders/{order_row.pk}/confirm-receipt/", as_user="sam", body={}
    )
    transfers = list(SellerTransfer.objects.filter(line__order=order_row).order_by("pk"))
    narrator.step(
        "Sam confirms receipt, so the sellers are paid without waiting for the holding period: "
        + ", ".join(f"{usd(t.amount_minor)} to {t.destination_account_id}" for t in transfers)
        + " (separate transfers, source_transaction = the charge, one transfer_group)."
    )
    _books(context, "after the transfers")

    staff = User.objects.create_user(
        email="staff@example.com",
        password="demo staff passphrase",  # noqa: S106 - the demo's throwaway staff user
        is_staff=True,
    )
    context.tokens["staff"] = str(RefreshToken.for_user(staff).access_token)
    request = context.api(
        "POST",
        f"/api/v1/payments/orders/{order_row.pk}/refund-requests/",
        as_user="sam",
        body={"amount_minor": 5_040, "reason": "The telescope's lens cap is missing."},
        expect=201,
    )
    refund = context.api(
        "POST", f"/api/v1/payments/staff/refunds/{request['id']}/approve/", as_user="staff", body={}
    )
    reversals = list(TransferReversal.objects.filter(refund_id=refund["id"]).order_by("pk"))
    narrator.step(
        f"Sam asks for {usd(5_040)} back; staff approve it (audited). Stripe refunds the card "
        f"and the sellers' shares come back from their transfers: "
        + ", ".join(f"{usd(r.amount_minor)}" for r in reversals)
        + "; the buyer's premium and commission parts are the platform's."
    )
    _books(context, "after the partial refund")

    payout_run()
    payouts = list(Payout.objects.order_by("pk"))
    narrator.step(
        "The daily payout run pays each seller's available balance: "
        + ", ".join(f"{usd(p.amount_minor)} from {p.account_id}" for p in payouts)
        + "."
    )
    context.sandbox.advance(3 * 86_400)
    _wait(
        context,
        lambda: all(p.status == "paid" for p in Payout.objects.all()),
        fallback=payouts_janitor_run,
        what="payout.paid",
    )
    narrator.detail(
        "Two banking days later the payouts are: "
        + ", ".join(sorted({p.status for p in Payout.objects.all()}))
        + "."
    )
    _books(context, "after the payouts")

    order_row.refresh_from_db()
    disputed_amount = order_row.captured_minor - order_row.refunded_minor
    dispute = context.sandbox.open_dispute(order_row.stripe_charge_id, amount=disputed_amount)
    _wait(
        context,
        lambda: Order.objects.get(pk=order_row.pk).status == Order.Status.DISPUTED,
        fallback=lambda: order_disputes_sync(order_id=order_row.pk),
        what="charge.dispute.created",
    )
    _wait(
        context,
        lambda: (
            not TransferReversal.objects.filter(dispute__isnull=False)
            .exclude(status="succeeded")
            .exists()
        ),
        fallback=janitor_run,
        what="The reversal task",
    )
    recovered = sum(r.amount_minor for r in TransferReversal.objects.filter(dispute__isnull=False))
    narrator.step(
        f"Sam's bank disputes the remaining {usd(disputed_amount)}: the order is frozen, and "
        f"because sellers bear disputes their transfers are reversed ({usd(recovered)}); "
        "having been paid out, their balances go negative and are flagged for follow-up."
    )
    context.sandbox.close_dispute(dispute["id"], "lost")
    _wait(
        context,
        lambda: Order.objects.get(pk=order_row.pk).status == Order.Status.DISPUTE_LOST,
        fallback=lambda: order_disputes_sync(order_id=order_row.pk),
        what="charge.dispute.closed",
    )
    order_row.refresh_from_db()
    narrator.step(
        f"The dispute is lost: the order ends {order_row.status}; the platform books its own "
        "share and Stripe's dispute fee as losses."
    )
    _books(context, "after the dispute")
