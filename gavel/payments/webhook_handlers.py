"""Stripe events the payments app applies. Each handler is idempotent and never moves a state
backwards: the snapshot is applied through the same functions as our own calls, whose
transition tables refuse backward moves (a late event is recorded, and changes nothing)."""

from __future__ import annotations

from gavel.gateway.payment_types import StripeDispute, StripePaymentIntent, StripeRefund
from gavel.payments.services.charging import attempt_intent_apply, attempt_of_metadata
from gavel.payments.services.disputes import dispute_closed_apply, dispute_opened_apply
from gavel.payments.services.events import event_record
from gavel.payments.services.refunds import STRIPE_REFUND_FAILED, refund_failed_apply
from gavel.webhooks.registry import IncomingEvent, webhook_handler


def _event_not_applied(event: IncomingEvent, stripe_object_id: str, message: str) -> None:
    """Record an event about an object that is not ours, or in no state to apply: nothing
    changes."""
    event_record(
        order=None,
        type=event.type,
        stripe_object_id=stripe_object_id,
        stripe_event_id=event.id,
        applied=False,
        message=message,
    )


@webhook_handler(
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "payment_intent.amount_capturable_updated",
    "payment_intent.processing",
    "payment_intent.canceled",
)
def payment_intent_event_apply(event: IncomingEvent) -> None:
    intent = StripePaymentIntent.from_payload(event.data_object)
    attempt = attempt_of_metadata(intent)
    if attempt is None:
        from gavel.payments.models import PaymentAttempt

        attempt = PaymentAttempt.objects.filter(stripe_payment_intent_id=intent.id).first()
    if attempt is None:
        _event_not_applied(event, intent.id, "no attempt of ours")
        return
    attempt_intent_apply(
        attempt_id=attempt.pk, intent=intent, source="webhook", stripe_event_id=event.id
    )


@webhook_handler("charge.dispute.created", "charge.dispute.funds_withdrawn")
def dispute_opened_event_apply(event: IncomingEvent) -> None:
    dispute_opened_apply(
        stripe_dispute=StripeDispute.from_payload(event.data_object), stripe_event_id=event.id
    )


@webhook_handler("charge.dispute.closed", "charge.dispute.funds_reinstated")
def dispute_closed_event_apply(event: IncomingEvent) -> None:
    dispute_closed_apply(
        stripe_dispute=StripeDispute.from_payload(event.data_object), stripe_event_id=event.id
    )


@webhook_handler("refund.failed")
@webhook_handler("charge.refund.updated")
def refund_failed_event_apply(event: IncomingEvent) -> None:
    """Stripe failed (or canceled) a refund: in flight on our side, or already booked (then
    unwound). Both events of one failure, and replays, apply it once."""
    from gavel.payments.models import Refund

    stripe_refund = StripeRefund.from_payload(event.data_object)
    if stripe_refund.status not in STRIPE_REFUND_FAILED:
        _event_not_applied(event, stripe_refund.id, f"refund is {stripe_refund.status}")
        return
    refund_id = stripe_refund.metadata.get("gavel_refund_id", "")
    refund = (
        Refund.objects.filter(pk=int(refund_id)).first()
        if refund_id.isdigit()
        else Refund.objects.filter(stripe_refund_id=stripe_refund.id).first()
    )
    if refund is None:
        _event_not_applied(event, stripe_refund.id, "no refund of ours")
        return
    refund_failed_apply(
        refund_id=refund.pk,
        stripe_refund=stripe_refund,
        stripe_event_id=event.id,
        failure_reason=str(event.data_object.get("failure_reason") or ""),
    )
