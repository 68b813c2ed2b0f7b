"""Buyers' Stripe customers brought from elsewhere (the legacy portal's import), and read
back from Stripe: an imported customer is ``unsynced`` until a refresh finds it in Stripe
(``active``), and the cards saved on it for off-session use become the buyer's verified payment
methods (saved by a SetupIntent, or by a payment that saved its card); one Stripe no longer
has is forgotten, and ``buyer_customer_ensure`` makes a new one when the buyer next needs it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from gavel.auctions.models import (
    BuyerCustomer,
    BuyerCustomerTransition,
    PaymentMethodSetup,
    VerifiedPaymentMethod,
)
from gavel.auctions.states import history_record, status_transition
from gavel.common.bulk import rows_insert
from gavel.common.errors import ServiceError
from gavel.common.outbox import outbox_enqueue
from gavel.common.pairs import pairs_split
from gavel.gateway.customers import customer_retrieve
from gavel.gateway.errors import GatewayError, GatewayFinalError, GatewayRetryableError
from gavel.gateway.setup_intents import (
    customer_cards,
    customer_payment_intents,
    customer_setup_intents,
)
from gavel.gateway.types import StripePaymentMethod

logger = logging.getLogger(__name__)

CustomerStatus = BuyerCustomer.Status
SetupStatus = PaymentMethodSetup.Status
REFRESH_BATCH_TASK = "gavel.auctions.tasks.buyer_customers_refresh"
IMPORTED = "imported"  # the history's first reason on a customer brought from elsewhere


def gateway_failure(error: GatewayError) -> ServiceError:
    """The API's answer when Stripe did not do what a buyer's request needed."""
    if isinstance(error, GatewayRetryableError):
        return ServiceError(
            "Stripe did not answer; try again shortly.", code="stripe_unavailable", status_code=503
        )
    return ServiceError(
        "Stripe refused the request.", code=error.code or "stripe_error", status_code=502
    )


@dataclass(frozen=True, slots=True)
class CustomerImport:
    user_id: int
    stripe_customer_id: str


@dataclass(frozen=True, slots=True)
class CustomerImportResult:
    created: int
    already_imported: int
    conflicts: list[CustomerImport]  # the user has another customer, or the customer another user


def buyer_customers_import(*, customers: list[CustomerImport]) -> CustomerImportResult:
    """Record buyers' existing Stripe customers (idempotent, one batch), so Gavel charges and
    saves cards on the customer the buyer already has rather than creating a second one.

    A pair already recorded is counted, and so is one whose customer Stripe no longer had (the
    user's row forgot it: a later import naming it again changes nothing); a user who already
    has another customer, or a customer that already belongs to another user (or appears
    twice in the batch), is returned as a conflict and not recorded. The unique user and
    customer columns guard concurrent imports.
    The new rows are ``unsynced``; one refresh task for the batch (through the outbox, so it
    is published only if the batch commits) reads them from Stripe.
    """
    for item in customers:
        if not item.stripe_customer_id.startswith("cus_"):
            raise ServiceError(
                f"Not a Stripe customer: {item.stripe_customer_id!r}", code="invalid_import"
            )
    with transaction.atomic():
        with connection.cursor() as cursor:  # arrays, not a parameter per id
            cursor.execute(
                "SELECT user_id, stripe_customer_id,"
                " ARRAY(SELECT jsonb_array_elements_text(forgotten_stripe_customer_ids))"
                " FROM auctions_buyercustomer"
                " WHERE user_id = ANY(%s::bigint[]) OR stripe_customer_id = ANY(%s::text[])",
                [
                    [item.user_id for item in customers],
                    [item.stripe_customer_id for item in customers],
                ],
            )
            found = cursor.fetchall()
        split = pairs_split(
            customers,
            pair=lambda item: (item.user_id, item.stripe_customer_id),
            recorded=[(user_id, customer_id) for user_id, customer_id, _ in found],
            also_done={(user_id, customer_id) for user_id, _, ids in found for customer_id in ids},
        )
        fresh, conflicts = split.fresh, split.conflicts
        # Set-based (``rows_insert``): an import writes tens of thousands of customers, and
        # building them and their history as models cost several times what the database does.
        created = [
            pk
            for (pk,) in rows_insert(
                BuyerCustomer,
                columns={
                    "user_id": [item.user_id for item in fresh],
                    "stripe_customer_id": [item.stripe_customer_id for item in fresh],
                },
                values={"status": CustomerStatus.UNSYNCED},
            )
        ]
        if created:
            rows_insert(
                BuyerCustomerTransition,
                columns={"subject_id": created},
                values={
                    "from_status": "",
                    "to_status": CustomerStatus.UNSYNCED,
                    "reason": IMPORTED,
                },
            )
            outbox_enqueue(
                task_name=REFRESH_BATCH_TASK,
                kwargs={"customer_ids": sorted(created)},
                queue="default",
            )
    return CustomerImportResult(
        created=len(created), already_imported=len(split.done), conflicts=conflicts
    )


def _customer_forget(customer: BuyerCustomer, *, why: str) -> None:
    """Stripe no longer has the customer (caller holds the row lock): back to ``creating``
    under a new generation, so the next ``buyer_customer_ensure`` makes a new customer with a
    new idempotency key; the payment methods verified on the old one can no longer be charged.
    """
    now = timezone.now()
    forgotten = customer.stripe_customer_id
    customer.stripe_customer_id = None
    customer.forgotten_stripe_customer_ids = [*customer.forgotten_stripe_customer_ids, forgotten]
    customer.generation += 1
    customer.synced_at = now
    status_transition(
        instance=customer,
        to_status=CustomerStatus.CREATING,
        reason=f"{forgotten} {why}",
        fields=["stripe_customer_id", "forgotten_stripe_customer_ids", "generation", "synced_at"],
    )
    VerifiedPaymentMethod.objects.filter(setup__customer=customer, detached_at__isnull=True).update(
        detached_at=now
    )
    logger.warning(
        "buyer's Stripe customer forgotten",
        extra={"customer_pk": customer.pk, "stripe_customer_id": forgotten, "why": why},
    )


def buyer_customer_refresh(*, customer_pk: int) -> BuyerCustomer:
    """Read the buyer's customer from Stripe (idempotent). Stripe has it: ``active``, with
    ``synced_at``, and the cards saved on it for off-session use are adopted
    (``_saved_cards_adopt``). Stripe answers that it was deleted, or has no such customer:
    forgotten. Any other gateway failure raises ``ServiceError`` and changes nothing (the
    janitor, or the webhook pipeline's retry, comes back). Stripe is read before the row is
    locked; a customer forgotten or replaced meanwhile is left as it now is."""
    customer = BuyerCustomer.objects.get(pk=customer_pk)
    stripe_customer_id = customer.stripe_customer_id
    if stripe_customer_id is None:
        return customer
    missing: str | None = None
    cards: list[SavedCard] = []
    try:
        if customer_retrieve(customer_id=stripe_customer_id).deleted:
            missing = "deleted in Stripe"
        else:
            cards = _saved_cards_read(stripe_customer_id)
    except GatewayFinalError as error:
        if error.code != "resource_missing":
            raise gateway_failure(error) from error
        missing = "not found in Stripe"
    except GatewayError as error:
        raise gateway_failure(error) from error
    with transaction.atomic():
        customer = BuyerCustomer.objects.select_for_update().get(pk=customer_pk)
        if customer.stripe_customer_id != stripe_customer_id:
            return customer
        if missing is not None:
            _customer_forget(customer, why=missing)
            return customer
        customer.synced_at = timezone.now()
        if customer.status == CustomerStatus.UNSYNCED:
            status_transition(
                instance=customer,
                to_status=CustomerStatus.ACTIVE,
                reason="found in Stripe",
                fields=["synced_at"],
            )
        else:
            customer.save(update_fields=["synced_at", "updated_at"])
        _saved_cards_adopt(customer, cards)
    return customer


@dataclass(frozen=True, slots=True)
class SavedCard:
    """A card saved on the customer for off-session use, and what verified it: a SetupIntent,
    or a PaymentIntent that saved the card as it paid (``setup_future_usage``)."""

    payment_method: StripePaymentMethod
    setup_intent_id: str | None = None
    payment_intent_id: str | None = None


# A payment whose card Stripe attached to the customer: authorized (manual capture) or paid.
PAYMENT_SAVED_STATUSES = frozenset({"requires_capture", "succeeded"})


def _saved_cards_read(stripe_customer_id: str) -> list[SavedCard]:
    """The cards a bidder may be charged off session with: attached to the customer now, and
    saved for off-session use outside Gavel, by a succeeded SetupIntent of usage
    ``off_session`` (the newest, for a card verified more than once) or else by a payment
    with ``setup_future_usage=off_session`` that Stripe authorized (the newest). A card
    attached without either (saved for on-session use) is not verified for Gavel's
    off-session charges: the buyer sets one up in the app. Gavel's own SetupIntents and
    PaymentIntents (their ``gavel_`` metadata) are left to the flows that made them."""
    attached = {card.id: card for card in customer_cards(customer_id=stripe_customer_id)}
    saved: dict[str, SavedCard] = {}
    # The lists are read newest first, and only as far as a card is left to account for: a
    # customer with no card costs no list, one whose cards SetupIntents verified no payments.
    if attached:
        for intent in customer_setup_intents(customer_id=stripe_customer_id):
            method_id = intent.payment_method_id
            if (
                intent.status == SetupStatus.SUCCEEDED
                and intent.usage == "off_session"
                and method_id in attached
                and intent.gavel_setup_id is None  # Gavel's own: its setup flow records it
                and method_id not in saved
            ):
                saved[method_id] = SavedCard(attached[method_id], setup_intent_id=intent.id)
                if len(saved) == len(attached):
                    break
    if len(saved) < len(attached):
        for payment in customer_payment_intents(customer_id=stripe_customer_id):
            method_id = payment.payment_method_id
            if (
                payment.status in PAYMENT_SAVED_STATUSES
                and payment.setup_future_usage == "off_session"
                and method_id in attached
                and not any(key.startswith("gavel_") for key in payment.metadata)
                and method_id not in saved
            ):
                saved[method_id] = SavedCard(attached[method_id], payment_intent_id=payment.id)
                if len(saved) == len(attached):
                    break
    return list(saved.values())


def _saved_cards_adopt(customer: BuyerCustomer, cards: list[SavedCard]) -> None:
    """Record each card Gavel does not know yet as a succeeded setup and a verified payment
    method (the caller holds the customer's row lock; a card known by its SetupIntent, its
    PaymentIntent or its payment method id is left as it is, so a refresh run twice adopts
    once)."""
    setups_known = PaymentMethodSetup.objects.filter(
        Q(
            stripe_setup_intent_id__in=[
                card.setup_intent_id for card in cards if card.setup_intent_id
            ]
        )
        | Q(
            stripe_payment_intent_id__in=[
                card.payment_intent_id for card in cards if card.payment_intent_id
            ]
        )
    ).values_list("stripe_setup_intent_id", "stripe_payment_intent_id")
    intents_known = {intent_id for pair in setups_known for intent_id in pair if intent_id}
    methods_known = set(
        VerifiedPaymentMethod.objects.filter(
            stripe_payment_method_id__in=[card.payment_method.id for card in cards]
        ).values_list("stripe_payment_method_id", flat=True)
    )
    for card in cards:
        intent_id = card.setup_intent_id or card.payment_intent_id
        if intent_id in intents_known or card.payment_method.id in methods_known:
            continue
        setup = PaymentMethodSetup.objects.create(
            user_id=customer.user_id,
            customer=customer,
            stripe_setup_intent_id=card.setup_intent_id,
            stripe_payment_intent_id=card.payment_intent_id,
        )
        history_record(
            instance=setup,
            from_status="",
            to_status=setup.status,
            reason="adopted: verified in Stripe before Gavel"
            if card.setup_intent_id
            else f"adopted: saved by payment {card.payment_intent_id} in Stripe before Gavel",
        )
        status_transition(
            instance=setup, to_status=SetupStatus.SUCCEEDED, reason="stripe: succeeded"
        )
        VerifiedPaymentMethod.objects.create(
            setup=setup, user_id=customer.user_id, **verified_fields(card.payment_method)
        )
        logger.info(
            "saved card adopted from Stripe",
            extra={"customer_pk": customer.pk, "stripe_intent_id": intent_id},
        )


def verified_fields(method: StripePaymentMethod) -> dict[str, Any]:
    """A verified payment method's columns from Stripe's payment method (display details
    only: never a card number)."""
    return {
        "stripe_payment_method_id": method.id,
        "brand": method.card_brand or method.type,
        "last4": method.card_last4 or "",
        "exp_month": method.card_exp_month,
        "exp_year": method.card_exp_year,
    }


@dataclass(frozen=True, slots=True)
class CustomersRefreshResult:
    refreshed: int
    failed: int  # left as they were, for the janitor's next run


def buyer_customers_refresh(*, customer_pks: list[int]) -> CustomersRefreshResult:
    """Refresh many customers (an import's batch), each in its own transaction: one failure
    does not stop the others. A row that no longer exists is skipped."""
    refreshed = failed = 0
    for customer_pk in customer_pks:
        try:
            buyer_customer_refresh(customer_pk=customer_pk)
        except BuyerCustomer.DoesNotExist:
            continue
        except ServiceError:
            failed += 1
            logger.warning("buyer customer refresh failed", extra={"customer_pk": customer_pk})
            continue
        refreshed += 1
    return CustomersRefreshResult(refreshed=refreshed, failed=failed)


def buyer_customers_janitor() -> CustomersRefreshResult:
    """Refresh the oldest ``unsynced`` customers (a batch whose refresh task failed), at most
    ``AUCTIONS_CUSTOMERS_JANITOR_BATCH`` a run."""
    batch: int = settings.AUCTIONS_CUSTOMERS_JANITOR_BATCH
    pks = list(
        BuyerCustomer.objects.filter(status=CustomerStatus.UNSYNCED)
        .order_by("id")
        .values_list("pk", flat=True)[:batch]
    )
    return buyer_customers_refresh(customer_pks=pks)


def buyer_customer_card_attached_apply(*, stripe_customer_id: str, payment_method_id: str) -> bool:
    """``payment_method.attached`` on an imported buyer's current customer (the legacy portal
    saving a card while both systems run): refresh the customer, which adopts the card if it
    was saved for off-session use (``_saved_cards_read``). True when the card is now a
    verified payment method; False when the customer is not one an import brought (Gavel's
    own, including one made after an imported customer was forgotten, record their cards
    through Gavel's setup flow), or the card was known already.
    Stripe failing raises ``ServiceError``: the webhook pipeline retries the event."""
    customer_pk = (
        BuyerCustomer.objects.filter(
            stripe_customer_id=stripe_customer_id,
            generation=1,  # still the imported customer: none was forgotten and made again
            transitions__reason=IMPORTED,
        )
        .values_list("pk", flat=True)
        .first()
    )
    known = VerifiedPaymentMethod.objects.filter(stripe_payment_method_id=payment_method_id)
    if customer_pk is None or known.exists():
        return False
    buyer_customer_refresh(customer_pk=customer_pk)
    return known.exists()


def buyer_customer_deleted_apply(*, stripe_customer_id: str) -> bool:
    """``customer.deleted``: re-read the customer (the event says that something happened,
    Stripe says what) and forget it if Stripe no longer has it. False when it is not a
    buyer's current customer (another's, or already forgotten: a repeated event)."""
    customer_pk = (
        BuyerCustomer.objects.filter(stripe_customer_id=stripe_customer_id)
        .values_list("pk", flat=True)
        .first()
    )
    if customer_pk is None:
        return False
    return buyer_customer_refresh(customer_pk=customer_pk).stripe_customer_id is None
