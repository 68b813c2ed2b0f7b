"""Append-only payment events and the staff audit log."""

from __future__ import annotations

from typing import Any

from gavel.payments.models import AuditLogEntry, Order, PaymentEvent
from gavel.users.models import User


def event_record(
    *,
    order: Order | None,
    type: str,
    amount_minor: int = 0,
    currency: str = "",
    stripe_object_id: str = "",
    stripe_event_id: str = "",
    applied: bool = True,
    message: str = "",
) -> None:
    """Record a payment event; the same Stripe event recorded twice is one row."""
    PaymentEvent.objects.bulk_create(
        [
            PaymentEvent(
                order=order,
                type=type[:64],
                amount_minor=amount_minor,
                currency=currency or (order.currency if order else ""),
                stripe_object_id=stripe_object_id,
                stripe_event_id=stripe_event_id,
                applied=applied,
                message=message[:500],
            )
        ],
        ignore_conflicts=True,
    )


def audit_record(
    *, actor: User, action: str, object_type: str, object_id: int | str, data: dict[str, Any]
) -> AuditLogEntry:
    return AuditLogEntry.objects.create(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        data=data,
    )
