"""Which of two events about one Stripe object is the newer: (created, progress rank, id).

Stripe's ``created`` has a resolution of one second, and the events of one request often share
it (``payment_intent.created`` and ``payment_intent.succeeded`` for a create with
``confirm=true``). Within one second, the event whose snapshot shows the later stage of the
object's lifecycle is taken as the newer; only then does the event id decide. A terminal status
therefore never loses a tie to an earlier one.
"""

from __future__ import annotations

from typing import Any

_INTENT = {
    "requires_payment_method": 0,
    "requires_confirmation": 1,
    "requires_action": 2,
    "processing": 3,
    "requires_capture": 4,
    "canceled": 5,
    "succeeded": 5,
}
PROGRESS_RANK: dict[str, dict[str, int]] = {
    "payment_intent": _INTENT,
    "setup_intent": _INTENT,
    "charge": {"pending": 0, "failed": 1, "succeeded": 1},
    "refund": {"pending": 0, "requires_action": 1, "succeeded": 2, "failed": 2, "canceled": 2},
    "payout": {"pending": 0, "in_transit": 1, "paid": 2, "failed": 2, "canceled": 2},
    "dispute": {
        "warning_needs_response": 0,
        "needs_response": 0,
        "warning_under_review": 1,
        "under_review": 1,
        "warning_closed": 2,
        "won": 2,
        "lost": 2,
    },
}


def progress_rank(*, object_type: str, data_object: dict[str, Any]) -> int:
    """The lifecycle stage of a snapshot (0 when its type or status is not ranked)."""
    status = data_object.get("status")
    if not isinstance(status, str):
        return 0
    return PROGRESS_RANK.get(object_type, {}).get(status, 0)
