"""Importing buyers' existing Stripe customers: idempotent, conflicts returned, not loaded."""

from __future__ import annotations

from typing import Any

import pytest

from gavel.auctions.models import BuyerCustomer
from gavel.auctions.services.customers import CustomerImport, buyer_customers_import
from gavel.common.errors import ServiceError

pytestmark = pytest.mark.django_db


def test_customers_import_once_and_conflicts_are_returned(make_user: Any) -> None:
    ann, bob, cat, dan = (make_user(f"{name}@example.com") for name in ("ann", "bob", "cat", "dan"))
    BuyerCustomer.objects.create(user=dan, stripe_customer_id="cus_DanAlready01")
    batch = [
        CustomerImport(ann.pk, "cus_AnnLegacy0001"),
        CustomerImport(bob.pk, "cus_DanAlready01"),  # another user's customer
        CustomerImport(dan.pk, "cus_DanSecond001"),  # the user has another customer
        CustomerImport(cat.pk, "cus_AnnLegacy0001"),  # twice in the batch
    ]
    first = buyer_customers_import(customers=batch)
    assert (first.created, first.already_imported) == (1, 0)
    assert first.conflicts == batch[1:]
    second = buyer_customers_import(customers=batch[:1])
    assert (second.created, second.already_imported, second.conflicts) == (0, 1, [])
    assert sorted(BuyerCustomer.objects.values_list("user__email", "stripe_customer_id")) == [
        ("ann@example.com", "cus_AnnLegacy0001"),
        ("dan@example.com", "cus_DanAlready01"),
    ]


def test_customers_import_refuses_what_is_not_a_customer_and_writes_nothing(
    make_user: Any,
) -> None:
    user = make_user("eve@example.com")
    with pytest.raises(ServiceError) as refused:
        buyer_customers_import(
            customers=[
                CustomerImport(user.pk, "cus_Fine00000001"),
                CustomerImport(user.pk, "acct_1"),
            ]
        )
    assert refused.value.code == "invalid_import"
    assert BuyerCustomer.objects.count() == 0
