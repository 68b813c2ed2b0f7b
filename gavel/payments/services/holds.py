"""Holds: manual-capture authorizations (or deposits) for high-value bidding.

Stripe cancels an uncaptured card authorization after 7 days. Policy (docs/payments.md,
"Holds"): ``holds_maintain`` renews a hold PAYMENTS_HOLD_RENEW_BEFORE_SECONDS before it
lapses while its auction is open (a new off-session authorization, then the old one is
released). When the renewal fails (the bank wants 3-D Secure, or declines) the old hold is
left to lapse and the bidder must place a new one to bid above the threshold again; bids
already placed stand, and at close the winner is charged off-session as usual. At close the
winner's hold pays the order when it covers the whole total (captured for the total, the rest
released); otherwise the order is charged normally and the hold released.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gavel.auctions.models import Auction
from gavel.common.errors import NotFoundError, ServiceError
from gavel.common.money import apply_bps
from gavel.common.outbox import outbox_enqueue
from gavel.gateway import payment_intents as gateway_intents
from gavel.gateway.errors import GatewayFinalError, GatewayRetryableError
from gavel.gateway.payment_types import StripePaymentIntent
from gavel.payments.lock_objects import hold_lock, order_lock
from gavel.payments.models import Hold, Order, PaymentAttempt
from gavel.payments.sellers import buyer_payment_method
from gavel.payments.services.events import event_record
from gavel.payments.states import Operation, order_transition_allowed
from gavel.users.models import User

H = Hold.Status
A = PaymentAttempt.Status

LIVE_HOLD_STATUSES = (H.CREATING, H.UNKNOWN, H.REQUIRES_ACTION, H.AUTHORIZED)


def hold_required_minor(*, auction: Auction, amount_minor: int) -> int:
    if auction.hold_policy == Auction.HoldPolicy.DEPOSIT:
        return max(1, apply_bps(amount_minor, settings.PAYMENTS_HOLD_DEPOSIT_BPS))
    return amount_minor


def hold_satisfied(
    *, auction: Auction, user: User, amount_minor: int, now: datetime | None = None
) -> bool:
    """An authorized, unexpired hold of the bidder covers a maximum of ``amount_minor``."""
    now = now or timezone.now()
    return Hold.objects.filter(
        auction=auction,
        bidder=user,
        status=H.AUTHORIZED,
        amount_minor__gte=hold_required_minor(auction=auction, amount_minor=amount_minor),
        expires_at__gt=now,
    ).exists()


def hold_place(*, auction_id: int, user: User, amount_minor: int) -> Hold:
    """Authorize (manual capture, off-session) what the auction's hold policy asks for a
    maximum bid of ``amount_minor``."""
    auction = Auction.objects.filter(pk=auction_id).first()
    if auction is None:
        raise NotFoundError("No such auction.", code="auction_not_found")
    if auction.hold_policy == Auction.HoldPolicy.NONE:
        raise ServiceError("This auction needs no hold.", code="hold_not_needed")
    if amount_minor <= 0:
        raise ServiceError(
            "The amount must be positive.",
            code="amount_invalid",
            fields={"amount_minor": ["Must be positive."]},
        )
    if hold_satisfied(auction=auction, user=user, amount_minor=amount_minor):
        return Hold.objects.filter(auction=auction, bidder=user, status=H.AUTHORIZED).latest("pk")
    method = buyer_payment_method(user=user)
    required = hold_required_minor(auction=auction, amount_minor=amount_minor)
    with transaction.atomic():
        attempt = PaymentAttempt.objects.create(
            purpose=PaymentAttempt.Purpose.HOLD,
            amount_minor=required,
            currency=auction.currency,
            capture_manually=True,
            stripe_customer_id=method.customer_id,
            stripe_payment_method_id=method.payment_method_id,
        )
        hold = Hold.objects.create(
            auction=auction,
            bidder=user,
            attempt=attempt,
            amount_minor=required,
            currency=auction.currency,
        )
    from gavel.payments.services.charging import attempt_send

    attempt_send(attempt_id=attempt.pk)
    hold.refresh_from_db()
    return hold


def hold_attempt_applied(*, attempt: PaymentAttempt, intent: StripePaymentIntent) -> None:
    """Mirror a hold attempt's new status on the hold (called under the attempt's lock)."""
    hold = hold_lock(hold_id=attempt.hold.pk).get()
    now = timezone.now()
    update: dict[str, object] = {}
    if attempt.status == A.REQUIRES_CAPTURE:
        update = {
            "status": H.AUTHORIZED,
            "expires_at": now + timedelta(seconds=settings.PAYMENTS_HOLD_LIFETIME_SECONDS),
        }
    elif attempt.status == A.SUCCEEDED:
        update = {"status": H.CAPTURED, "captured_minor": intent.amount_received_minor}
    elif attempt.status == A.CANCELED:
        update = {"status": H.EXPIRED if intent.cancellation_reason == "automatic" else H.RELEASED}
    elif attempt.status == A.REQUIRES_ACTION or (
        attempt.status == A.REQUIRES_PAYMENT_METHOD
        and intent.last_error_code == "authentication_required"
    ):
        update = {"status": H.REQUIRES_ACTION}
    elif attempt.status == A.REQUIRES_PAYMENT_METHOD:
        update = {"status": H.FAILED}
    if update and hold.status not in (H.CAPTURED, H.RELEASED, H.EXPIRED):
        Hold.objects.filter(pk=hold.pk).update(**update, updated_at=now)


def hold_capture_for_order(*, hold_id: int, order_id: int) -> None:
    """Capture the order's total from the winner's hold; the rest is released by Stripe."""
    hold = Hold.objects.select_related("attempt").get(pk=hold_id)
    order = Order.objects.get(pk=order_id)
    attempt = hold.attempt
    assert attempt.stripe_payment_intent_id
    try:
        intent = gateway_intents.payment_intent_capture(
            operation_id=attempt.pk,
            payment_intent_id=attempt.stripe_payment_intent_id,
            amount_minor=order.total_minor,
        )
    except GatewayRetryableError as error:
        with transaction.atomic():
            locked = order_lock(order_id=order_id).get()
            if order_transition_allowed(
                order=locked, operation=Operation.ATTEMPT_UNKNOWN, to_status=Order.Status.UNKNOWN
            ):
                from gavel.payments.states import order_transition

                order_transition(
                    order=locked,
                    operation=Operation.ATTEMPT_UNKNOWN,
                    to_status=Order.Status.UNKNOWN,
                    reason=f"hold capture: {error.message}"[:300],
                )
        return
    except GatewayFinalError as error:
        # The authorization is gone (expired or canceled): charge the order normally.
        event_record(order=order, type="hold_capture_failure", message=error.message)
        Hold.objects.filter(pk=hold.pk).update(status=H.EXPIRED)
        PaymentAttempt.objects.filter(pk=attempt.pk).update(order=None)
        Hold.objects.filter(pk=hold.pk).update(order=None)
        from gavel.payments.services.charging import order_charge

        order_charge(order_id=order_id)
        return
    from gavel.payments.services.charging import attempt_intent_apply

    attempt_intent_apply(attempt_id=attempt.pk, intent=intent, source="hold_capture")


def hold_release(*, hold_id: int) -> Hold:
    """Cancel a hold's authorization (idempotent)."""
    hold = Hold.objects.select_related("attempt").get(pk=hold_id)
    if hold.status not in (H.AUTHORIZED, H.REQUIRES_ACTION) or not (
        hold.attempt.stripe_payment_intent_id
    ):
        return hold
    try:
        intent = gateway_intents.payment_intent_cancel(
            operation_id=hold.attempt.pk, payment_intent_id=hold.attempt.stripe_payment_intent_id
        )
    except GatewayFinalError:
        intent = gateway_intents.payment_intent_retrieve(
            payment_intent_id=hold.attempt.stripe_payment_intent_id
        )
    from gavel.payments.services.charging import attempt_intent_apply

    attempt_intent_apply(attempt_id=hold.attempt.pk, intent=intent, source="release")
    hold.refresh_from_db()
    return hold


def holds_release_after_payment(*, order: Order, paid_by_attempt_id: int) -> None:
    """The order is paid: the buyer's other holds on its auctions are released (after
    commit, through the outbox)."""
    auction_ids = list(order.lines.exclude(sale=None).values_list("sale__auction_id", flat=True))
    for hold_id in (
        Hold.objects.filter(
            auction_id__in=auction_ids, bidder_id=order.buyer_id, status=H.AUTHORIZED
        )
        .exclude(attempt_id=paid_by_attempt_id)
        .values_list("pk", flat=True)
    ):
        outbox_enqueue(
            task_name="gavel.payments.tasks.hold_release",
            kwargs={"hold_id": hold_id},
            queue="payments",
        )


def holds_maintain(*, now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Release holds of closed auctions (except the winner's until paid) and renew holds
    about to lapse on open auctions."""
    now = now or timezone.now()
    released = renewed = 0
    from gavel.auctions.models import Sale

    closed = (
        Hold.objects.filter(status=H.AUTHORIZED, order__isnull=True)
        .exclude(auction__status=Auction.Status.ACTIVE)
        .select_related("auction")
        .order_by("pk")[:limit]
    )
    for hold in closed:
        winner_unpaid = Sale.objects.filter(
            auction_id=hold.auction_id,
            buyer_id=hold.bidder_id,
            status__in=(Sale.Status.AWAITING_PAYMENT, Sale.Status.PAYMENT_FAILED),
        ).exists()
        if not winner_unpaid:
            hold_release(hold_id=hold.pk)
            released += 1
    renew_before = now + timedelta(seconds=settings.PAYMENTS_HOLD_RENEW_BEFORE_SECONDS)
    lapsing = (
        Hold.objects.filter(
            status=H.AUTHORIZED,
            expires_at__lte=renew_before,
            auction__status=Auction.Status.ACTIVE,
            replaced_by__isnull=True,
        )
        .select_related("auction", "bidder")
        .order_by("pk")[:limit]
    )
    for hold in lapsing:
        if hold_renew(hold_id=hold.pk):
            renewed += 1
    return {"released": released, "renewed": renewed}


def hold_renew(*, hold_id: int) -> bool:
    """A new authorization for the same amount; the old one is released once it succeeds."""
    hold = Hold.objects.select_related("attempt", "bidder").get(pk=hold_id)
    try:
        method = buyer_payment_method(user=hold.bidder)
    except ServiceError:
        return False
    with transaction.atomic():
        old = hold_lock(hold_id=hold_id).get()
        if old.replaced_by_id is not None or old.status != H.AUTHORIZED:
            return False
        attempt = PaymentAttempt.objects.create(
            purpose=PaymentAttempt.Purpose.HOLD,
            amount_minor=old.amount_minor,
            currency=old.currency,
            capture_manually=True,
            stripe_customer_id=method.customer_id,
            stripe_payment_method_id=method.payment_method_id,
        )
        new = Hold.objects.create(
            auction_id=old.auction_id,
            bidder_id=old.bidder_id,
            attempt=attempt,
            amount_minor=old.amount_minor,
            currency=old.currency,
        )
        Hold.objects.filter(pk=old.pk).update(replaced_by=new)
    from gavel.payments.services.charging import attempt_send

    attempt_send(attempt_id=attempt.pk)
    new.refresh_from_db()
    if new.status != H.AUTHORIZED:
        event_record(order=None, type="hold_renewal_failure", message=f"hold {hold_id}")
        return False
    hold_release(hold_id=hold_id)
    return True
