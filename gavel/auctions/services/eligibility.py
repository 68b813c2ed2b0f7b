"""Eligibility to bid: a payment method verified for off-session charges (SetupIntent flow).

1. ``payment_method_setup_create``: ensure the bidder's Stripe customer, record a setup row,
   create a SetupIntent (usage off_session) keyed by that row's id, hand the client secret to
   the app (PaymentSheet / Elements), which confirms it, 3-D Secure included.
2. Confirmation arrives by webhook (``setup_intent.*``, see ``webhook_handlers``) or through
   ``payment_method_setup_refresh``; both re-read the SetupIntent from Stripe and apply it.
   On success the payment method's display details (brand, last4, expiry) are recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from gavel.auctions.lock_objects import setup_lock
from gavel.auctions.models import BuyerCustomer, PaymentMethodSetup, VerifiedPaymentMethod
from gavel.auctions.selectors import payment_method_setup_get
from gavel.auctions.services.customers import gateway_failure, verified_fields
from gavel.auctions.states import SETUP_TRANSITIONS, history_record, status_transition
from gavel.common.errors import ConflictError, ServiceError
from gavel.gateway.customers import customer_create
from gavel.gateway.errors import GatewayError
from gavel.gateway.setup_intents import (
    payment_method_retrieve,
    setup_intent_create,
    setup_intent_retrieve,
)
from gavel.gateway.types import StripePaymentMethod, StripeSetupIntent
from gavel.users.models import User

logger = logging.getLogger(__name__)

SetupStatus = PaymentMethodSetup.Status
PAYMENT_METHOD_IN_USE = "payment_method_in_use"  # the card is recorded for another user


@dataclass(frozen=True, slots=True)
class SetupView:
    setup: PaymentMethodSetup
    client_secret: str | None
    payment_method: VerifiedPaymentMethod | None


def buyer_customer_ensure(*, user: User) -> BuyerCustomer:
    """The bidder's Stripe customer, created once per generation (the row id and generation
    key the Stripe call: concurrent callers get the same customer; after one was forgotten,
    ``services.customers``, the next is a new one)."""
    try:
        with transaction.atomic():
            customer, created = BuyerCustomer.objects.get_or_create(user=user)
            if created:
                history_record(
                    instance=customer, from_status="", to_status=customer.status, reason="created"
                )
    except IntegrityError:
        customer = BuyerCustomer.objects.get(user=user)
    if customer.stripe_customer_id:
        return customer
    generation = customer.generation
    try:
        remote = customer_create(
            operation_id=customer.pk,
            email=user.email,
            name=user.display_name,
            metadata={"gavel_user_id": str(user.pk)},
            attempt=generation - 1,
        )
    except GatewayError as error:
        raise gateway_failure(error) from error
    with transaction.atomic():
        customer = BuyerCustomer.objects.select_for_update().get(pk=customer.pk)
        # a concurrent caller (same key, same customer) may have recorded it already
        if customer.stripe_customer_id is None and customer.generation == generation:
            customer.stripe_customer_id = remote.id
            customer.synced_at = timezone.now()
            status_transition(
                instance=customer,
                to_status=BuyerCustomer.Status.ACTIVE,
                reason=f"{remote.id} created in Stripe",
                fields=["stripe_customer_id", "synced_at"],
            )
    return customer


def payment_method_setup_create(*, user: User) -> SetupView:
    customer = buyer_customer_ensure(user=user)
    with transaction.atomic():
        setup = PaymentMethodSetup.objects.create(user=user, customer=customer)
        history_record(instance=setup, from_status="", to_status=setup.status, reason="created")
    return _setup_sync(setup)


def payment_method_setup_refresh(*, setup_id: int, user: User) -> SetupView:
    setup = payment_method_setup_get(setup_id=setup_id)
    if setup.user_id != user.pk and not user.is_staff:
        raise ServiceError("This setup is not yours.", code="not_your_setup", status_code=403)
    return _setup_sync(setup)


def payment_method_detached_apply(*, payment_method_id: str, now: datetime | None = None) -> bool:
    """``payment_method.detached``: the method can no longer be charged, so it no longer makes
    its owner eligible. Idempotent; False when it was not a verified method (or already off)."""
    updated = VerifiedPaymentMethod.objects.filter(
        stripe_payment_method_id=payment_method_id, detached_at__isnull=True
    ).update(detached_at=now or timezone.now())
    return updated > 0


def setup_intent_event_apply(*, setup_intent_id: str, setup_id_hint: str | None = None) -> bool:
    """A ``setup_intent.*`` webhook: re-read the intent and apply it. False when not ours."""
    setup = PaymentMethodSetup.objects.filter(stripe_setup_intent_id=setup_intent_id).first()
    if setup is None and setup_id_hint and setup_id_hint.isdigit():
        setup = PaymentMethodSetup.objects.filter(
            pk=int(setup_id_hint), stripe_setup_intent_id__isnull=True
        ).first()
    if setup is None:
        return False
    # A gateway error propagates: the webhook pipeline records it and retries the event.
    intent = setup_intent_retrieve(setup_intent_id=setup_intent_id)
    _intent_apply(setup_id=setup.pk, intent=intent, payment_method=_verified_details(intent))
    return True


def _setup_sync(setup: PaymentMethodSetup) -> SetupView:
    """Create (again, same idempotency key) or re-read the SetupIntent, then apply it. A card
    adopted from a payment that saved it has no SetupIntent: it is shown as recorded."""
    if setup.stripe_setup_intent_id is None and setup.stripe_payment_intent_id is not None:
        return SetupView(
            setup=setup,
            client_secret=None,
            payment_method=VerifiedPaymentMethod.objects.filter(setup=setup).first(),
        )
    try:
        if setup.stripe_setup_intent_id is None:
            intent = setup_intent_create(
                operation_id=setup.pk,
                customer_id=str(setup.customer.stripe_customer_id),
                metadata={"gavel_setup_id": str(setup.pk), "gavel_user_id": str(setup.user_id)},
            )
        else:
            intent = setup_intent_retrieve(setup_intent_id=setup.stripe_setup_intent_id)
        payment_method = _verified_details(intent)
    except GatewayError as error:
        raise gateway_failure(error) from error
    view = _intent_apply(setup_id=setup.pk, intent=intent, payment_method=payment_method)
    if view.payment_method is None and view.setup.last_error_code == PAYMENT_METHOD_IN_USE:
        raise ConflictError(
            "This card is already recorded for another account; contact support.",
            code=PAYMENT_METHOD_IN_USE,
        )
    return view


def _verified_record(
    *, setup: PaymentMethodSetup, payment_method: StripePaymentMethod
) -> VerifiedPaymentMethod | None:
    """Record the card ``setup`` verified (under the setup's lock). A card verified before,
    under an earlier setup, moves to this one with Stripe's current details; one recorded for
    another user is not taken from them: the setup records ``payment_method_in_use``, None."""
    fields = verified_fields(payment_method)
    known = (
        VerifiedPaymentMethod.objects.select_for_update()
        .filter(stripe_payment_method_id=payment_method.id)
        .first()
    )
    if known is None:
        verified, _ = VerifiedPaymentMethod.objects.get_or_create(
            setup=setup, defaults={"user_id": setup.user_id, **fields}
        )
        return verified
    if known.user_id != setup.user_id:
        if setup.last_error_code != PAYMENT_METHOD_IN_USE:
            setup.last_error_code = PAYMENT_METHOD_IN_USE
            setup.save(update_fields=["last_error_code", "updated_at"])
        logger.warning(
            "verified card belongs to another user",
            extra={"setup_pk": setup.pk, "verified_payment_method_pk": known.pk},
        )
        return None
    if known.setup_id != setup.pk:
        for name, value in fields.items():
            setattr(known, name, value)
        known.setup = setup
        known.detached_at = None
        known.save(update_fields=[*fields, "setup", "detached_at"])
    return known


def _verified_details(intent: StripeSetupIntent) -> StripePaymentMethod | None:
    if intent.status != SetupStatus.SUCCEEDED or intent.payment_method_id is None:
        return None
    return payment_method_retrieve(payment_method_id=intent.payment_method_id)


def _intent_apply(
    *, setup_id: int, intent: StripeSetupIntent, payment_method: StripePaymentMethod | None
) -> SetupView:
    with transaction.atomic():
        setup = setup_lock(setup_id=setup_id).get()
        fields: list[str] = []
        if setup.stripe_setup_intent_id is None:
            setup.stripe_setup_intent_id = intent.id
            fields.append("stripe_setup_intent_id")
        error_code = intent.last_error_decline_code or intent.last_error_code or ""
        if error_code != setup.last_error_code and intent.status != SetupStatus.SUCCEEDED:
            setup.last_error_code = error_code
            fields.append("last_error_code")
        if intent.status in SETUP_TRANSITIONS.get(setup.status, frozenset()):
            status_transition(
                instance=setup,
                to_status=intent.status,
                reason=f"stripe: {intent.status}" + (f" ({error_code})" if error_code else ""),
                fields=fields,
            )
        elif fields:
            setup.save(update_fields=[*fields, "updated_at"])
        verified = None
        if setup.status == SetupStatus.SUCCEEDED and payment_method is not None:
            verified = _verified_record(setup=setup, payment_method=payment_method)
    terminal = setup.status in (SetupStatus.SUCCEEDED, SetupStatus.CANCELED)
    return SetupView(
        setup=setup,
        client_secret=None if terminal else intent.client_secret,
        payment_method=verified or VerifiedPaymentMethod.objects.filter(setup=setup).first(),
    )
