"""The order payment and refund state machines as data (docs/payments.md has the tables).

Transitions are keyed by (current status, operation); the value is the set of statuses that
operation may lead to. ``order_transition`` is the one function that moves an order: it
refuses any other move and writes a history row. Webhooks use ``order_transition_allowed``
first, so a late event (an older fact about a payment that has moved on) is recorded as a
payment event and changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from django.utils import timezone

from gavel.common.errors import ConflictError
from gavel.payments.models import Order, OrderTransition, Refund, RefundTransition

S = Order.Status
R = Refund.Status


class Operation(StrEnum):
    CREATE = "create"  # the first row of every history (legacy imports give their own)
    ATTEMPT_UNKNOWN = "attempt_unknown"
    REQUIRE_ACTION = "require_action"
    DECLINE = "decline"
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    CANCEL = "cancel"
    REFUND = "refund"
    DISPUTE_OPEN = "dispute_open"
    DISPUTE_WIN = "dispute_win"
    DISPUTE_LOSE = "dispute_lose"
    REFUND_FAIL = "refund_fail"  # a booked refund failed at Stripe: the money came back


_BEFORE_PAYMENT = (S.PENDING, S.UNKNOWN, S.REQUIRES_ACTION, S.FAILED)
_PAID = (S.CAPTURED, S.PARTIALLY_REFUNDED)


def _table() -> dict[tuple[str, Operation], frozenset[str]]:
    table: dict[tuple[str, Operation], frozenset[str]] = {}

    def allow(sources: tuple[str, ...], operation: Operation, *targets: str) -> None:
        for source in sources:
            table[(source, operation)] = frozenset(targets)

    allow(_BEFORE_PAYMENT, Operation.ATTEMPT_UNKNOWN, S.UNKNOWN)
    allow(_BEFORE_PAYMENT, Operation.REQUIRE_ACTION, S.REQUIRES_ACTION)
    allow(_BEFORE_PAYMENT, Operation.DECLINE, S.FAILED)
    allow(_BEFORE_PAYMENT, Operation.AUTHORIZE, S.AUTHORIZED)
    allow((*_BEFORE_PAYMENT, S.AUTHORIZED), Operation.CAPTURE, S.CAPTURED)
    allow((*_BEFORE_PAYMENT, S.AUTHORIZED), Operation.CANCEL, S.CANCELED)
    allow(_PAID, Operation.REFUND, S.PARTIALLY_REFUNDED, S.REFUNDED)
    allow((*_PAID, S.REFUNDED), Operation.DISPUTE_OPEN, S.DISPUTED)
    allow((S.DISPUTED,), Operation.DISPUTE_WIN, S.CAPTURED, S.PARTIALLY_REFUNDED, S.REFUNDED)
    allow((S.DISPUTED,), Operation.DISPUTE_LOSE, S.DISPUTE_LOST)
    allow(
        (S.PARTIALLY_REFUNDED, S.REFUNDED), Operation.REFUND_FAIL, S.CAPTURED, S.PARTIALLY_REFUNDED
    )
    return table


TRANSITIONS = _table()

# Terminal: no operation leads anywhere from these.
TERMINAL_STATUSES = frozenset({S.CANCELED, S.DISPUTE_LOST})
# The money was collected (refunds, transfers and disputes apply).
PAID_STATUSES = frozenset({S.CAPTURED, S.PARTIALLY_REFUNDED, S.REFUNDED, S.DISPUTED})
# The buyer may (re)try to pay.
PAYABLE_STATUSES = frozenset({S.PENDING, S.FAILED, S.REQUIRES_ACTION})


def status_is_terminal(status: str) -> bool:
    """True for statuses no operation leaves (every status is named in exactly one of
    TERMINAL_STATUSES or the table's sources)."""
    return status in TERMINAL_STATUSES


class IllegalTransition(ConflictError):
    code = "illegal_transition"


class RefundOperation(StrEnum):
    APPROVE = "approve"  # staff approve a buyer's request: it is sent
    REJECT = "reject"
    OUTCOME_UNKNOWN = "outcome_unknown"  # the call's answer was lost (the janitor settles it)
    SUCCEED = "succeed"  # Stripe made it: booked
    FAIL = "fail"  # refused, or failed at Stripe before Gavel booked it
    FAIL_AFTER_SUCCESS = "fail_after_success"  # Stripe failed it after reporting it succeeded


def _refund_table() -> dict[tuple[str, RefundOperation], frozenset[str]]:
    in_flight = (R.CREATING, R.UNKNOWN)
    return {
        (R.REQUESTED, RefundOperation.APPROVE): frozenset({R.CREATING}),
        (R.REQUESTED, RefundOperation.REJECT): frozenset({R.REJECTED}),
        (R.CREATING, RefundOperation.OUTCOME_UNKNOWN): frozenset({R.UNKNOWN}),
        **{(status, RefundOperation.SUCCEED): frozenset({R.SUCCEEDED}) for status in in_flight},
        **{(status, RefundOperation.FAIL): frozenset({R.FAILED}) for status in in_flight},
        (R.SUCCEEDED, RefundOperation.FAIL_AFTER_SUCCESS): frozenset({R.FAILED}),
    }


REFUND_TRANSITIONS = _refund_table()
REFUND_TERMINAL_STATUSES = frozenset({R.REJECTED, R.FAILED})


def refund_transition(
    *, refund: Refund, operation: RefundOperation, to_status: str, reason: str = ""
) -> bool:
    """Move ``refund`` (locked by the caller) to ``to_status`` and record it: False, writing
    nothing, when it is already there; IllegalTransition for a move the table does not allow."""
    if refund.status == to_status:
        return False
    if to_status not in REFUND_TRANSITIONS.get((refund.status, operation), frozenset()):
        raise IllegalTransition(
            f"A refund that is {refund.status} cannot {operation} to {to_status}.",
        )
    now = timezone.now()
    RefundTransition.objects.create(
        refund=refund,
        from_status=refund.status,
        to_status=to_status,
        operation=operation,
        reason=reason[:300],
        occurred_at=now,
    )
    Refund.objects.filter(pk=refund.pk).update(status=to_status, updated_at=now)
    refund.status = to_status
    return True


def order_transition_allowed(*, order: Order, operation: Operation, to_status: str) -> bool:
    return to_status in TRANSITIONS.get((order.status, operation), frozenset())


def order_transition(
    *,
    order: Order,
    operation: Operation,
    to_status: str,
    reason: str = "",
    at: datetime | None = None,
) -> bool:
    """Move ``order`` (locked by the caller) to ``to_status`` and record it.

    Returns False, writing nothing, when the order is already there; raises IllegalTransition
    for a move the table does not allow.
    """
    if order.status == to_status:
        return False
    if not order_transition_allowed(order=order, operation=operation, to_status=to_status):
        raise IllegalTransition(
            f"An order that is {order.status} cannot {operation} to {to_status}.",
        )
    OrderTransition.objects.create(
        order=order,
        from_status=order.status,
        to_status=to_status,
        operation=operation,
        reason=reason[:300],
        occurred_at=at or timezone.now(),
    )
    Order.objects.filter(pk=order.pk).update(status=to_status, updated_at=timezone.now())
    order.status = to_status
    return True
