"""Buyers' Stripe customers brought from elsewhere (the legacy portal's import)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from gavel.auctions.models import BuyerCustomer
from gavel.common.errors import ServiceError


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

    A pair already recorded is counted; a user who already has another customer, or a customer
    that already belongs to another user (or appears twice in the batch), is returned as a
    conflict and not recorded. The unique user and customer columns guard concurrent imports.
    """
    for item in customers:
        if not item.stripe_customer_id.startswith("cus_"):
            raise ServiceError(
                f"Not a Stripe customer: {item.stripe_customer_id!r}", code="invalid_import"
            )
    with transaction.atomic():
        existing = set(
            BuyerCustomer.objects.filter(
                user_id__in=[item.user_id for item in customers]
            ).values_list("user_id", "stripe_customer_id")
        ) | set(
            BuyerCustomer.objects.filter(
                stripe_customer_id__in=[item.stripe_customer_id for item in customers]
            ).values_list("user_id", "stripe_customer_id")
        )
        taken_users = {user_id for user_id, _ in existing}
        taken_customers = {customer_id for _, customer_id in existing}
        already = 0
        conflicts: list[CustomerImport] = []
        fresh: list[CustomerImport] = []
        for item in customers:
            if (item.user_id, item.stripe_customer_id) in existing:
                already += 1
            elif item.user_id in taken_users or item.stripe_customer_id in taken_customers:
                conflicts.append(item)
            else:
                fresh.append(item)
                existing.add((item.user_id, item.stripe_customer_id))
                taken_users.add(item.user_id)
                taken_customers.add(item.stripe_customer_id)
        created = BuyerCustomer.objects.bulk_create(
            [
                BuyerCustomer(user_id=item.user_id, stripe_customer_id=item.stripe_customer_id)
                for item in fresh
            ]
        )
    return CustomerImportResult(created=len(created), already_imported=already, conflicts=conflicts)
