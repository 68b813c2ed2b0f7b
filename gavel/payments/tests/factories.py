"""Test factories of the payments app: real sandbox customers, cards and connected accounts,
auctions and sales rows, and the sandbox's events as webhook handlers see them."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from django.utils import timezone

from gavel.auctions.models import (
    Auction,
    BuyerCustomer,
    PaymentMethodSetup,
    Sale,
    VerifiedPaymentMethod,
)
from gavel.connect.models import ConnectedAccount
from gavel.connect.states import AccountStatus
from gavel.users.models import User
from gavel.webhooks.registry import IncomingEvent, handler_for

_counter = itertools.count(1)


def user_make(*, seller: bool = False) -> User:
    number = next(_counter)
    return User.objects.create_user(
        email=f"pay{number}@example.com",
        password="correct horse battery",
        display_name=f"Payer {number}",
        is_seller=seller,
    )


def seller_make(sandbox: Any) -> tuple[User, str]:
    """A seller with an onboarded Express account in the sandbox."""
    user = user_make(seller=True)
    account = sandbox.client().v1.accounts.create(
        params={
            "country": "US",
            "email": user.email,
            "controller": {
                "fees": {"payer": "application"},
                "losses": {"payments": "application"},
                "stripe_dashboard": {"type": "express"},
                "requirement_collection": "stripe",
            },
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
        }
    )
    sandbox.complete_onboarding(account.id)
    ConnectedAccount.objects.create(
        user=user,
        stripe_account_id=account.id,
        preset=ConnectedAccount.Preset.EXPRESS,
        status=AccountStatus.ENABLED,
        charges_enabled=True,
        payouts_enabled=True,
        details_submitted=True,
        capabilities={"card_payments": "active", "transfers": "active"},
    )
    return user, str(account.id)


def card_save(sandbox: Any, user: User, card: str = "pm_card_visa") -> VerifiedPaymentMethod:
    """What the auctions app's SetupIntent flow records: a customer and a verified card."""
    client = sandbox.client()
    customer_row = BuyerCustomer.objects.filter(user=user).first()
    if customer_row is None:
        customer = client.v1.customers.create(params={"email": user.email})
        customer_row = BuyerCustomer.objects.create(
            user=user, stripe_customer_id=customer.id, status=BuyerCustomer.Status.ACTIVE
        )
    setup_intent = client.v1.setup_intents.create(
        params={
            "customer": customer_row.stripe_customer_id,
            "payment_method": card,
            "confirm": True,
            "usage": "off_session",
        }
    )
    if setup_intent.status == "requires_action":
        sandbox.complete_3ds(setup_intent.id)
    setup = PaymentMethodSetup.objects.create(
        user=user,
        customer=customer_row,
        stripe_setup_intent_id=setup_intent.id,
        status=PaymentMethodSetup.Status.SUCCEEDED,
    )
    return VerifiedPaymentMethod.objects.create(
        user=user,
        setup=setup,
        stripe_payment_method_id=str(setup_intent.payment_method),
        brand="visa",
        last4="4242",
    )


def auction_make(
    seller: User,
    *,
    currency: str = "USD",
    category: str = "art",
    hold_policy: str = Auction.HoldPolicy.NONE,
    status: str = Auction.Status.SOLD,
) -> Auction:
    now = timezone.now()
    return Auction.objects.create(
        seller=seller,
        title=f"Lot {next(_counter)}",
        category=category,
        currency=currency,
        starts_at=now - timedelta(days=7),
        ends_at=now + timedelta(days=1) if status == Auction.Status.ACTIVE else now,
        scheduled_ends_at=now,
        starting_price_minor=100,
        increment_table=[[0, 50]],
        soft_close_seconds=0,
        soft_close_style=Auction.SoftCloseStyle.EXTEND_BY,
        hold_policy=hold_policy,
        hold_threshold_minor=1000 if hold_policy != Auction.HoldPolicy.NONE else None,
        status=status,
        price_minor=100,
    )


def sale_make(
    seller: User,
    buyer: User,
    amount_minor: int,
    *,
    currency: str = "USD",
    kind: str = Sale.Kind.WINNER,
    auction: Auction | None = None,
) -> Sale:
    auction = auction or auction_make(seller, currency=currency)
    return Sale.objects.create(
        auction=auction,
        buyer=buyer,
        seller=seller,
        kind=kind,
        amount_minor=amount_minor,
        currency=currency,
    )


def incoming(event: dict[str, Any]) -> IncomingEvent:
    return IncomingEvent(
        id=event["id"],
        type=event["type"],
        created=event["created"],
        livemode=bool(event.get("livemode")),
        data_object=event["data"]["object"],
        account=event.get("account"),
        previous_attributes=event["data"].get("previous_attributes"),
        raw=event,
    )


def events_deliver(sandbox: Any, *types: str, account: str | None = None) -> int:
    """Feed the sandbox's events of ``types`` (oldest first) to the registered handlers."""
    delivered = 0
    for event_type in types:
        events = sorted(
            sandbox.list_events(type=event_type, account=account), key=lambda e: e["created"]
        )
        handler = handler_for(event_type)
        assert handler is not None, event_type
        for event in events:
            handler(incoming(event))
            delivered += 1
    return delivered
