"""payout.* events of connected accounts: applied forward only (a late event is ignored)."""

from __future__ import annotations

from gavel.gateway.payment_types import StripePayout
from gavel.payouts.models import Payout
from gavel.payouts.services import payout_apply
from gavel.webhooks.registry import IncomingEvent, webhook_handler


@webhook_handler("payout.paid", "payout.failed", "payout.canceled", "payout.updated")
def payout_event_apply(event: IncomingEvent) -> None:
    stripe_payout = StripePayout.from_payload(event.data_object)
    # Only the event's own account's payouts: another account's payout may carry any metadata.
    payouts = Payout.objects.filter(account_id=event.account or "")
    payout = payouts.filter(stripe_payout_id=stripe_payout.id).first()
    if payout is None:
        raw = stripe_payout.metadata.get("gavel_payout_id", "")
        payout = payouts.filter(pk=int(raw)).first() if raw.isdigit() else None
    if payout is None:
        return
    payout_apply(payout_id=payout.pk, stripe_payout=stripe_payout)
