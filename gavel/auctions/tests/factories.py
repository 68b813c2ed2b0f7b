"""Test factories of the auctions app."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from gavel.auctions.models import (
    Auction,
    BuyerCustomer,
    PaymentMethodSetup,
    VerifiedPaymentMethod,
)
from gavel.auctions.services.listing import auction_create
from gavel.users.models import User

_counter = itertools.count(1)


def user_make(*, seller: bool = False, eligible: bool = True, **extra: Any) -> User:
    number = next(_counter)
    user = User.objects.create_user(
        email=f"user{number}@example.com",
        password="correct horse battery",
        display_name=f"User {number}",
        is_seller=seller,
        **extra,
    )
    if eligible:
        payment_method_verify(user)
    return user


def payment_method_verify(user: User) -> VerifiedPaymentMethod:
    """A verified payment method as the SetupIntent flow would record it."""
    customer, _ = BuyerCustomer.objects.get_or_create(
        user=user,
        defaults={
            "stripe_customer_id": f"cus_test_{user.pk}",
            "status": BuyerCustomer.Status.ACTIVE,
        },
    )
    setup = PaymentMethodSetup.objects.create(
        user=user,
        customer=customer,
        stripe_setup_intent_id=f"seti_test_{user.pk}_{next(_counter)}",
        status=PaymentMethodSetup.Status.SUCCEEDED,
    )
    return VerifiedPaymentMethod.objects.create(
        user=user,
        setup=setup,
        stripe_payment_method_id=f"pm_test_{setup.pk}",
        brand="visa",
        last4="4242",
        exp_month=12,
        exp_year=2034,
    )


def auction_make(
    *,
    seller: User | None = None,
    now: datetime | None = None,
    starts_in: timedelta = timedelta(0),
    lasts: timedelta = timedelta(days=7),
    **terms: Any,
) -> Auction:
    now = now or timezone.now()
    values: dict[str, Any] = {
        "title": "Lot: a brass telescope",
        "category": "instruments",
        "currency": "USD",
        "starting_price_minor": 100,
        "soft_close_seconds": 0,
    }
    values.update(terms)
    return auction_create(
        seller=seller or user_make(seller=True, eligible=False),
        starts_at=now + starts_in,
        ends_at=now + starts_in + lasts,
        now=now,
        **values,
    )
