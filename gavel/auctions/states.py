"""State machines as data: one transition table per entity, one function that moves a state.

``status_transition`` refuses a move the table does not allow and writes the history row in
the caller's transaction. The caller holds the row lock (``lock_objects``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from django.db import models

from gavel.auctions.models import (
    Auction,
    AuctionTransition,
    BuyerCustomer,
    BuyerCustomerTransition,
    PaymentMethodSetup,
    PaymentMethodSetupTransition,
    Sale,
    SaleTransition,
    SecondChanceOffer,
    SecondChanceOfferTransition,
)
from gavel.common.errors import ConflictError

AuctionStatus = Auction.Status
SaleStatus = Sale.Status
OfferStatus = SecondChanceOffer.Status
SetupStatus = PaymentMethodSetup.Status
CustomerStatus = BuyerCustomer.Status

AUCTION_TRANSITIONS: Mapping[str, frozenset[str]] = {
    AuctionStatus.ACTIVE: frozenset(
        {AuctionStatus.SOLD, AuctionStatus.UNSOLD, AuctionStatus.CANCELLED}
    ),
    AuctionStatus.SOLD: frozenset(),
    AuctionStatus.UNSOLD: frozenset(),
    AuctionStatus.CANCELLED: frozenset(),
}
SALE_TRANSITIONS: Mapping[str, frozenset[str]] = {
    SaleStatus.AWAITING_PAYMENT: frozenset(
        {SaleStatus.PAYMENT_FAILED, SaleStatus.PAID, SaleStatus.CANCELLED}
    ),
    SaleStatus.PAYMENT_FAILED: frozenset({SaleStatus.PAID, SaleStatus.CANCELLED}),
    SaleStatus.PAID: frozenset(),
    SaleStatus.CANCELLED: frozenset(),
}
OFFER_TRANSITIONS: Mapping[str, frozenset[str]] = {
    OfferStatus.OFFERED: frozenset(
        {OfferStatus.ACCEPTED, OfferStatus.DECLINED, OfferStatus.EXPIRED}
    ),
    OfferStatus.ACCEPTED: frozenset(),
    OfferStatus.DECLINED: frozenset(),
    OfferStatus.EXPIRED: frozenset(),
}
_SETUP_TERMINAL = frozenset({SetupStatus.SUCCEEDED, SetupStatus.CANCELED})
# A SetupIntent moves freely among its open states (a failed 3-D Secure attempt goes back to
# requires_payment_method) until it succeeds or is cancelled.
SETUP_TRANSITIONS: Mapping[str, frozenset[str]] = {
    status: (
        frozenset()
        if status in _SETUP_TERMINAL
        else frozenset(s for s in SetupStatus.values if s not in (status, SetupStatus.CREATING))
    )
    for status in SetupStatus.values
}

# A customer Stripe no longer has is forgotten (back to creating, a new one made when needed);
# an imported one becomes active once Stripe confirms it.
CUSTOMER_TRANSITIONS: Mapping[str, frozenset[str]] = {
    CustomerStatus.CREATING: frozenset({CustomerStatus.ACTIVE}),
    CustomerStatus.ACTIVE: frozenset({CustomerStatus.CREATING}),
    CustomerStatus.UNSYNCED: frozenset({CustomerStatus.ACTIVE, CustomerStatus.CREATING}),
}

_TABLES: Mapping[type[models.Model], Mapping[str, frozenset[str]]] = {
    Auction: AUCTION_TRANSITIONS,
    Sale: SALE_TRANSITIONS,
    SecondChanceOffer: OFFER_TRANSITIONS,
    PaymentMethodSetup: SETUP_TRANSITIONS,
    BuyerCustomer: CUSTOMER_TRANSITIONS,
}
_HISTORY: Mapping[type[models.Model], type[models.Model]] = {
    Auction: AuctionTransition,
    Sale: SaleTransition,
    SecondChanceOffer: SecondChanceOfferTransition,
    PaymentMethodSetup: PaymentMethodSetupTransition,
    BuyerCustomer: BuyerCustomerTransition,
}


class IllegalTransition(ConflictError):
    code = "illegal_transition"


def status_is_terminal(
    instance: Auction | Sale | SecondChanceOffer | PaymentMethodSetup | BuyerCustomer,
) -> bool:
    return not _TABLES[type(instance)][instance.status]


_Subject = TypeVar("_Subject", Auction, Sale, SecondChanceOffer, PaymentMethodSetup, BuyerCustomer)


def status_transition(
    *, instance: _Subject, to_status: str, reason: str = "", fields: Sequence[str] = ()
) -> _Subject:
    """Move ``instance`` to ``to_status`` (saving ``fields`` too) and record the move."""
    from_status = instance.status
    if to_status not in _TABLES[type(instance)][from_status]:
        raise IllegalTransition(
            f"{type(instance).__name__} {instance.pk} cannot go from {from_status} to {to_status}."
        )
    instance.status = to_status
    instance.save(update_fields=["status", "updated_at", *fields])
    history_record(instance=instance, from_status=from_status, to_status=to_status, reason=reason)
    return instance


def history_record(
    *,
    instance: Auction | Sale | SecondChanceOffer | PaymentMethodSetup | BuyerCustomer,
    from_status: str,
    to_status: str,
    reason: str = "",
) -> None:
    _HISTORY[type(instance)]._default_manager.create(
        subject=instance, from_status=from_status, to_status=to_status, reason=reason[:200]
    )
