"""Seams to other apps: sellers' connected accounts (Connect) and buyers' saved payment
methods (auctions' eligibility)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from django.utils.module_loading import import_string

from gavel.common.errors import ServiceError
from gavel.users.models import User


def seller_account_id(*, user: User) -> str:
    """The seller's connected account id, or a 409 when the seller has none."""
    try:
        selector = cast(
            Callable[..., str | None], import_string(settings.PAYMENTS_SELLER_ACCOUNT_SELECTOR)
        )
    except ImportError:
        selector = None
    account_id = selector(user=user) if selector is not None else None
    if not account_id:
        raise ServiceError(
            "The seller has no connected account to be paid into.",
            code="seller_account_missing",
            status_code=409,
        )
    return account_id


@dataclass(frozen=True, slots=True)
class SavedPaymentMethod:
    customer_id: str
    payment_method_id: str


def buyer_payment_method(*, user: User, payment_method_id: str | None = None) -> SavedPaymentMethod:
    """The buyer's verified off-session payment method still usable (attached, unexpired):
    the newest, or the one named."""
    from gavel.auctions.selectors import usable_payment_methods

    methods = (
        usable_payment_methods()
        .filter(user=user, setup__customer__stripe_customer_id__isnull=False)
        .select_related("setup__customer")
    )
    if payment_method_id:
        methods = methods.filter(stripe_payment_method_id=payment_method_id)
    method = methods.order_by("-verified_at", "-pk").first()
    if method is None or not method.setup.customer.stripe_customer_id:
        raise ServiceError(
            "Add a verified payment method first.",
            code="payment_method_required",
            fields={"payment_method_id": ["No such verified payment method."]}
            if payment_method_id
            else {},
        )
    return SavedPaymentMethod(
        customer_id=method.setup.customer.stripe_customer_id,
        payment_method_id=method.stripe_payment_method_id,
    )
