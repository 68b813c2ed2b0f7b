"""Captured in-flight legacy orders handed over to Gavel: ``paid`` (the seller not paid yet)
and ``disputed`` (the dispute still open when the portal stopped).

The money of these orders is already in the ledger (``ledger_plan``: the ``capture`` entry,
and ``dispute_opened`` for a dispute), but not tied to Stripe's balance transactions, and a
disputed order has no ``payments.Dispute`` row. Adopting one order:

1. reads its charge through the gateway (it must exist, be captured for the order's amount and
   currency) and links the charge's balance transaction to the legacy ``capture`` entry when the
   two agree to the cent (``BalanceTransactionLink``), so reconciliation with Stripe sees the
   charge as booked and nothing is posted twice;
2. for a disputed order, reads the charge's disputes from Stripe and applies them with
   ``payments.services.disputes.order_disputes_sync``, the same functions as the webhooks: the
   ``Dispute`` row is created in the state Stripe reports, its ``withdrawal_booked_minor`` is
   what the import already posted, so the withdrawal entry (``dispute:<dp>:withdrawal``)
   only adds what the portal never booked (Stripe's dispute fee) and links the withdrawal's
   balance transaction; a dispute Stripe has already closed gets its outcome at once.

A ``confirmed`` order the portal had not transferred yet (the buyer confirmed receipt in the
portal) is confirmed in Gavel too, with ``order_receipt_confirm`` on the buyer's behalf: the
seller's net is transferred as the portal's payout job would have done.

From then on the order is Gavel's: ``order_receipt_confirm`` transfers the seller's net, and
``charge.dispute.closed`` (won: funds reinstated; lost: final) is applied by the normal
dispute handlers. Every step is idempotent (unique link per balance transaction, unique dispute
id, unique entry reference): calling it again adopts nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q

from gavel.common.errors import ServiceError
from gavel.gateway import balance as gateway_balance
from gavel.gateway import disputes as gateway_disputes
from gavel.gateway.errors import GatewayFinalError, GatewayRetryableError
from gavel.gateway.payment_intents import charge_retrieve
from gavel.ledger import accounts
from gavel.ledger.models import BalanceTransactionLink, JournalEntry, Posting
from gavel.legacy.states import LegacyState
from gavel.payments.models import Dispute, Order, OrderLine
from gavel.payments.services.disputes import order_disputes_sync
from gavel.payments.services.transfers import order_receipt_confirm

S = Order.Status
# orders.REFERENCE_PREFIX and HISTORY_OPERATION (orders imports this module, not the reverse)
REFERENCE_PREFIX = "legacy:transactions:"
HISTORY_OPERATION = "legacy_import"
ADOPTED_STATUSES = (S.CAPTURED, S.DISPUTED)

# The staged payment an order was loaded from: the first one not quarantined, as the orders
# load and the ledger load choose it.
PAYMENT_SQL = """
SELECT p.legacy_id FROM legacy_legacypayment p
WHERE p.transaction_legacy_id = %s AND NOT p.is_quarantined
ORDER BY p.legacy_id LIMIT 1
"""


class AdoptionRefused(ServiceError):
    code = "legacy_adoption_refused"


@dataclass(frozen=True, slots=True)
class CapturedAdoption:
    adopted: list[int]
    refused: dict[int, str]
    retry_later: list[int]


def orders_captured_pending(*, limit: int) -> list[int]:
    """Legacy orders Gavel carries on that are not adopted yet: captured with a seller's net
    still owed, or disputed; with a charge id; the charge not linked yet, or (disputed) no
    dispute row yet."""
    charge_linked = BalanceTransactionLink.objects.filter(
        source_id=OuterRef("stripe_charge_id"), stripe_account=""
    )
    has_dispute = Dispute.objects.filter(order=OuterRef("pk"))
    owes_seller = OrderLine.objects.filter(
        order=OuterRef("pk"), transferred_minor__lt=F("seller_net_minor")
    )
    return list(
        Order.objects.filter(
            kind=Order.Kind.LEGACY,
            legacy_reference__startswith=REFERENCE_PREFIX,
            status__in=ADOPTED_STATUSES,
        )
        .exclude(stripe_charge_id="")
        .filter(
            (Q(status=S.DISPUTED) & ~Exists(has_dispute))
            | (~Exists(charge_linked) & (Q(status=S.DISPUTED) | Exists(owes_seller)))
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def _capture_entry(order: Order) -> JournalEntry:
    transaction_id = (order.legacy_reference or "")[len(REFERENCE_PREFIX) :]
    with connection.cursor() as cursor:
        cursor.execute(PAYMENT_SQL, [transaction_id])
        row = cursor.fetchone()
    entry = (
        JournalEntry.objects.filter(reference=f"legacy:stripe_payments:{row[0]}:capture").first()
        if row
        else None
    )
    if entry is None:
        raise AdoptionRefused("no legacy capture entry for this order's payment")
    return entry


def order_charge_link(*, order_id: int) -> bool:
    """Tie the order's charge on Stripe to the legacy capture entry; True when linked now,
    False when it already was. Refused (AdoptionRefused) when Stripe disagrees."""
    order = Order.objects.get(pk=order_id)
    charge = charge_retrieve(charge_id=order.stripe_charge_id)
    if (charge.amount_captured_minor, charge.currency) != (order.captured_minor, order.currency):
        raise AdoptionRefused(
            f"charge {charge.id} captured {charge.amount_captured_minor} {charge.currency},"
            f" the order {order.captured_minor} {order.currency}"
        )
    if not charge.balance_transaction_id:
        raise AdoptionRefused(f"charge {charge.id} has no balance transaction")
    if BalanceTransactionLink.objects.filter(
        balance_transaction_id=charge.balance_transaction_id
    ).exists():
        return False
    balance = gateway_balance.balance_transaction_retrieve(
        balance_transaction_id=charge.balance_transaction_id
    )
    entry = _capture_entry(order)
    booked = sum(
        Posting.objects.filter(
            entry=entry, account__code=accounts.PLATFORM_STRIPE_BALANCE.code
        ).values_list("amount_minor", flat=True)
    )
    if (balance.net_minor, balance.currency) != (booked, order.currency):
        raise AdoptionRefused(
            f"charge {charge.id}: Stripe's net {balance.net_minor} {balance.currency},"
            f" the legacy capture entry {booked} {order.currency} (amount or real fee differs)"
        )
    try:
        with transaction.atomic():
            BalanceTransactionLink.objects.create(
                balance_transaction_id=balance.id,
                entry=entry,
                source_id=balance.source_id or charge.id,
                type=balance.type,
                amount_minor=balance.net_minor,
                currency=balance.currency,
                stripe_created_at=balance.created_at,
            )
    except IntegrityError:  # linked meanwhile by a concurrent adoption
        return False
    return True


def _confirmed_in_portal(order: Order) -> bool:
    return order.transitions.filter(
        operation=HISTORY_OPERATION, reason=f"legacy {LegacyState.CONFIRMED.value}"
    ).exists()


def order_captured_adopt(*, order_id: int) -> None:
    """Adopt one captured or disputed legacy order (see the module docstring)."""
    order = Order.objects.select_related("buyer").get(pk=order_id)
    is_disputed = order.status == S.DISPUTED
    if is_disputed and not gateway_disputes.disputes_for_charge(charge_id=order.stripe_charge_id):
        raise AdoptionRefused(f"Stripe has no dispute on charge {order.stripe_charge_id}")
    order_charge_link(order_id=order_id)
    if is_disputed:
        order_disputes_sync(order_id=order_id)
    elif order.receipt_confirmed_at is None and _confirmed_in_portal(order):
        # The buyer confirmed receipt in the portal; its payout job had not transferred yet.
        order_receipt_confirm(order_id=order_id, user=order.buyer)


def orders_captured_adopt(*, limit: int = 500) -> CapturedAdoption:
    adopted: list[int] = []
    refused: dict[int, str] = {}
    retry_later: list[int] = []
    for order_id in orders_captured_pending(limit=limit):
        try:
            order_captured_adopt(order_id=order_id)
        except GatewayRetryableError:
            retry_later.append(order_id)
        except (ServiceError, GatewayFinalError) as error:
            refused[order_id] = str(error)
        else:
            adopted.append(order_id)
    return CapturedAdoption(adopted, refused, retry_later)
