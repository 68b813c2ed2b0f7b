"""Demo chapter: a buyer wins two lots from two sellers; the money is charged, split into
transfers, partly refunded, paid out and disputed, and the books reconcile at every step."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
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


def _money_webhooks(context: StoryContext) -> None:
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


def _second_seller(context: StoryContext) -> str:
    """Bo signs up and onboards like Ada did."""
    body = {"email": "bo@example.com", "password": "demo passphrase 2026", "display_name": "Bo"}
    context.api("POST", "/api/v1/auth/register/", body=body, expect=201)
    tokens = context.api(
        "POST", "/api/v1/auth/token/", body={"email": body["email"], "password": body["password"]}
    )
    context.tokens["bo"] = tokens["access"]
    started = context.api("POST", "/api/v1/connect/onboarding/", as_user="bo", expect=201)
    context.sandbox.follow_account_link(started["onboarding_link"]["url"])
    account: dict[str, Any] = context.api("POST", "/api/v1/connect/account/refresh/", as_user="bo")
    return str(account["stripe_account_id"])


def _buyer_card(context: StoryContext) -> None:
    setup = context.api("POST", "/api/v1/payment-methods/setup/", as_user="sam", expect=201)
    context.sandbox.client(settings.STRIPE_SECRET_KEY).v1.setup_intents.confirm(
        setup["setup_intent_id"], params={"payment_method": "pm_card_bypassPending"}
    )
    done = context.api(
        "POST", f"/api/v1/payment-methods/setup/{setup['id']}/refresh/", as_user="sam"
    )
    method = done["payment_method"] or {}
    context.narrator.step(
        f"Sam saves a card for off-session use ({method.get('brand')} •••• {method.get('last4')}); "
        "no card number ever reaches Gavel."
    )


def _sold_to_sam(context: StoryContext, sellers: list[tuple[str, int]]) -> list[int]:
    """Two auctions close with Sam as the winner (the auctions app records the sales and hands
    them to payments through the outbox, in one transaction)."""
    from gavel.auctions.models import Auction
    from gavel.auctions.services.sales import sale_create
    from gavel.users.models import User

    sam = User.objects.get(email="sam@example.com")
    now = timezone.now()
    sale_ids = []
    with transaction.atomic():
        for (email, hammer), title in zip(sellers, ("Brass telescope", "Oak chest"), strict=True):
            seller = User.objects.get(email=email)
            auction = Auction.objects.create(
                seller=seller,
                title=title,
                category="antiques",
                currency="USD",
                starts_at=now - timedelta(days=7),
                ends_at=now,
                scheduled_ends_at=now,
                starting_price_minor=1_000,
                increment_table=[[0, 100]],
                soft_close_seconds=0,
                soft_close_style=Auction.SoftCloseStyle.EXTEND_BY,
                status=Auction.Status.SOLD,
                outcome=Auction.Outcome.SOLD,
                price_minor=hammer,
                winner=sam,
                hammer_price_minor=hammer,
                closed_at=now,
            )
            sale_ids.append(
                sale_create(auction=auction, buyer=sam, amount_minor=hammer, kind="winner").pk
            )
    return sale_ids


def chapter_payments(context: StoryContext) -> None:
    from gavel.payments.models import Order, SellerTransfer, TransferReversal
    from gavel.payments.services.disputes import order_disputes_sync
    from gavel.payments.services.janitor import janitor_run
    from gavel.payouts.models import Payout
    from gavel.payouts.services import payout_run, payouts_janitor_run
    from gavel.users.models import User

    narrator = context.narrator
    narrator.chapter("Sam wins two lots from two sellers: charge, split, refund, payout, dispute")
    _money_webhooks(context)
    acct_bo = _second_seller(context)
    acct_ada = context.cast.get("ada_stripe_account", "")
    narrator.step(f"Bo onboards as a second seller ({acct_bo}), next to Ada ({acct_ada}).")
    _buyer_card(context)

    sale_ids = _sold_to_sam(context, [("ada@example.com", 48_000), ("bo@example.com", 12_500)])
    narrator.step(
        f"Sam wins Ada's brass telescope at {usd(48_000)} and Bo's oak chest at {usd(12_500)} "
        f"(sales #{sale_ids[0]} and #{sale_ids[1]}); the auctions app hands both to payments."
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
