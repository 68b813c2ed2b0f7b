"""Auctions, bids, sales, second-chance offers and bidders' verified payment methods.

Money is integer minor units plus the auction's currency. Bids and every ``*Transition`` table
are append-only: a correction is a new row. Status changes go through
``gavel.auctions.states.status_transition`` only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class _TransitionRecord(models.Model):
    """An append-only status change; ``subject`` is declared by each concrete table."""

    from_status = models.CharField(max_length=32)
    to_status = models.CharField(max_length=32)
    reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status}"


class Auction(models.Model):
    """A seller's listing and its auction, with the proxy engine's state on the same row.

    ``leader_max_minor`` is the leader's hidden maximum and is never shown to other users.
    ``version`` rises with every change and is the ETag of the auction's GET answers.
    """

    class Status(models.TextChoices):
        ACTIVE = "active"  # listed; open for bids between starts_at and ends_at
        SOLD = "sold"  # closed with a winner, or bought now
        UNSOLD = "unsold"  # closed without a sale (no bids, or reserve not met)
        CANCELLED = "cancelled"  # withdrawn by the seller before the first bid

    class SoftCloseStyle(models.TextChoices):
        EXTEND_BY = "extend_by"  # a late bid adds the window to the end
        EXTEND_TO = "extend_to"  # a late bid moves the end to the window after the bid

    class HoldPolicy(models.TextChoices):
        NONE = "none"
        AUTHORIZATION = "authorization"
        DEPOSIT = "deposit"

    class Outcome(models.TextChoices):
        PENDING = "pending"
        SOLD = "sold"
        BOUGHT_NOW = "bought_now"
        RESERVE_NOT_MET = "reserve_not_met"
        NO_BIDS = "no_bids"
        CANCELLED = "cancelled"

    seller = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="auctions"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    category = models.CharField(max_length=64, db_index=True)
    image_urls = models.JSONField(default=list, blank=True)
    currency = models.CharField(max_length=3)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(db_index=True, help_text="Current end, extensions included")
    scheduled_ends_at = models.DateTimeField(help_text="End as listed, before extensions")
    starting_price_minor = models.BigIntegerField()
    reserve_price_minor = models.BigIntegerField(null=True, blank=True)
    buy_now_price_minor = models.BigIntegerField(null=True, blank=True)
    increment_table = models.JSONField(help_text="[[price_from_minor, increment_minor], ...]")
    soft_close_seconds = models.PositiveIntegerField()
    soft_close_style = models.CharField(max_length=16, choices=SoftCloseStyle.choices)
    hold_policy = models.CharField(
        max_length=16, choices=HoldPolicy.choices, default=HoldPolicy.NONE
    )
    hold_threshold_minor = models.BigIntegerField(null=True, blank=True)

    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    price_minor = models.BigIntegerField(help_text="Visible current price")
    leader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    leader_max_minor = models.BigIntegerField(default=0)
    bid_count = models.PositiveIntegerField(default=0)
    extension_count = models.PositiveIntegerField(default=0)
    version = models.PositiveBigIntegerField(default=1)
    close_scheduled_for = models.DateTimeField(
        null=True, blank=True, help_text="ends_at an exact-time close task was sent for"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    winner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="auctions_won",
    )
    hammer_price_minor = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(starting_price_minor__gt=0), name="auction_starting_price_positive"
            ),
            models.CheckConstraint(
                condition=Q(reserve_price_minor__isnull=True)
                | Q(reserve_price_minor__gte=models.F("starting_price_minor")),
                name="auction_reserve_at_least_start",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="auction_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(price_minor__gte=0), name="auction_price_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["status", "ends_at"], name="auction_status_ends")]

    def __str__(self) -> str:
        return f"Auction {self.pk}: {self.title}"


class Bid(models.Model):
    """One accepted maximum bid (append-only). ``max_amount_minor`` is private to its bidder."""

    class Kind(models.TextChoices):
        BID = "bid"
        BUY_NOW = "buy_now"

    auction = models.ForeignKey(Auction, on_delete=models.PROTECT, related_name="bids")
    bidder = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.BID)
    sequence = models.PositiveIntegerField(help_text="1, 2, ... within the auction")
    max_amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    price_after_minor = models.BigIntegerField(help_text="Visible price after this bid")
    leader_after = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    ends_at_after = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["auction", "sequence"], name="bid_unique_sequence"),
            models.CheckConstraint(condition=Q(max_amount_minor__gt=0), name="bid_max_positive"),
        ]
        indexes = [models.Index(fields=["bidder", "-id"], name="bid_bidder_recent")]

    def __str__(self) -> str:
        return f"Bid {self.pk} on auction {self.auction_id}"


class AuctionTransition(_TransitionRecord):
    """Append-only history of an auction's status changes."""

    subject = models.ForeignKey(Auction, on_delete=models.PROTECT, related_name="transitions")


class AuctionExtension(models.Model):
    """Append-only record of each soft-close extension."""

    auction = models.ForeignKey(Auction, on_delete=models.PROTECT, related_name="extensions")
    bid = models.OneToOneField(Bid, on_delete=models.PROTECT, related_name="extension")
    previous_ends_at = models.DateTimeField()
    new_ends_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Auction {self.auction_id} extended to {self.new_ends_at:%Y-%m-%d %H:%M:%S}"


class Sale(models.Model):
    """What the payments app charges: a buyer owes ``amount_minor`` for an auction's item.

    An auction has at most one sale that is not cancelled (a second-chance sale follows a
    cancelled one).
    """

    class Kind(models.TextChoices):
        WINNER = "winner"
        BUY_NOW = "buy_now"
        SECOND_CHANCE = "second_chance"

    class Status(models.TextChoices):
        AWAITING_PAYMENT = "awaiting_payment"
        PAYMENT_FAILED = "payment_failed"
        PAID = "paid"
        CANCELLED = "cancelled"

    auction = models.ForeignKey(Auction, on_delete=models.PROTECT, related_name="sales")
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="purchases"
    )
    seller = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sales"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount_minor = models.BigIntegerField(help_text="Hammer price")
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.AWAITING_PAYMENT, db_index=True
    )
    payment_deadline_at = models.DateTimeField(
        null=True, blank=True, help_text="Set by the first payment failure"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["auction"],
                condition=~Q(status="cancelled"),
                name="sale_one_live_per_auction",
            ),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="sale_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"Sale {self.pk} of auction {self.auction_id}"


class SaleTransition(_TransitionRecord):
    """Append-only history of a sale's status changes."""

    subject = models.ForeignKey(Sale, on_delete=models.PROTECT, related_name="transitions")


class SecondChanceOffer(models.Model):
    """An offer to a losing bidder to buy at their own maximum after the sale fell through."""

    class Status(models.TextChoices):
        OFFERED = "offered"
        ACCEPTED = "accepted"
        DECLINED = "declined"
        EXPIRED = "expired"

    auction = models.ForeignKey(
        Auction, on_delete=models.PROTECT, related_name="second_chance_offers"
    )
    bidder = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    cancelled_sale = models.ForeignKey(Sale, on_delete=models.PROTECT, related_name="+")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.OFFERED, db_index=True
    )
    expires_at = models.DateTimeField()
    sale = models.OneToOneField(
        Sale, on_delete=models.PROTECT, null=True, blank=True, related_name="second_chance_offer"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["auction", "bidder"], name="second_chance_once_per_bidder"
            ),
            models.UniqueConstraint(
                fields=["auction"],
                condition=Q(status="offered"),
                name="second_chance_one_open_per_auction",
            ),
        ]

    def __str__(self) -> str:
        return f"Second-chance offer {self.pk} on auction {self.auction_id}"


class SecondChanceOfferTransition(_TransitionRecord):
    """Append-only history of a second-chance offer's status changes."""

    subject = models.ForeignKey(
        SecondChanceOffer, on_delete=models.PROTECT, related_name="transitions"
    )


class BuyerCustomer(models.Model):
    """A bidder's Stripe customer. The row id (with ``generation``) is the customer_create
    operation id.

    A customer brought from elsewhere (the legacy portal) starts ``unsynced`` until a refresh
    reads it from Stripe. One Stripe no longer has (deleted, or never in this Stripe account)
    is forgotten: the row goes back to ``creating`` with its ``generation`` raised, so the next
    ``buyer_customer_ensure`` creates a new customer under a new idempotency key.
    """

    class Status(models.TextChoices):
        CREATING = "creating"  # no Stripe customer yet (or the last one is gone)
        ACTIVE = "active"  # created by Gavel, or read from Stripe by a refresh
        UNSYNCED = "unsynced"  # imported, not read from Stripe yet

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stripe_customer"
    )
    stripe_customer_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CREATING)
    generation = models.PositiveIntegerField(
        default=1, help_text="Raised each time a customer Stripe no longer has is forgotten"
    )
    synced_at = models.DateTimeField(null=True, blank=True, help_text="Last read from Stripe")
    forgotten_stripe_customer_ids = models.JSONField(
        default=list,
        blank=True,
        help_text="Customers Stripe no longer had, oldest first: an import naming one again"
        " is not a conflict",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["id"], name="auctions_customer_unsynced", condition=Q(status="unsynced")
            )
        ]

    def __str__(self) -> str:
        return f"Customer {self.stripe_customer_id or '(pending)'} of user {self.user_id}"


class BuyerCustomerTransition(_TransitionRecord):
    """Append-only history of a buyer's Stripe customer (the reason names a forgotten id)."""

    subject = models.ForeignKey(BuyerCustomer, on_delete=models.PROTECT, related_name="transitions")


class PaymentMethodSetup(models.Model):
    """One SetupIntent (usage off_session) for a bidder; the row id is its operation id.

    The client secret is never stored: it is handed to the app when the intent is created or
    refreshed, straight from Stripe's answer.
    """

    class Status(models.TextChoices):
        CREATING = "creating"  # row exists, the SetupIntent may or may not exist yet
        REQUIRES_PAYMENT_METHOD = "requires_payment_method"
        REQUIRES_CONFIRMATION = "requires_confirmation"
        REQUIRES_ACTION = "requires_action"  # 3-D Secure pending
        PROCESSING = "processing"
        SUCCEEDED = "succeeded"
        CANCELED = "canceled"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payment_method_setups"
    )
    customer = models.ForeignKey(BuyerCustomer, on_delete=models.PROTECT)
    stripe_setup_intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_payment_intent_id = models.CharField(
        max_length=255,
        unique=True,
        null=True,
        blank=True,
        help_text="A card adopted from a payment that saved it for off-session use before Gavel"
        " (setup_future_usage): that PaymentIntent. Such a setup has no SetupIntent.",
    )
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.CREATING)
    last_error_code = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Setup {self.pk} ({self.status})"


class PaymentMethodSetupTransition(_TransitionRecord):
    """Append-only history of a SetupIntent's status as we observed it."""

    subject = models.ForeignKey(
        PaymentMethodSetup, on_delete=models.PROTECT, related_name="transitions"
    )


class VerifiedPaymentMethod(models.Model):
    """A payment method Stripe verified for off-session use. Never a card number."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="verified_payment_methods"
    )
    setup = models.OneToOneField(
        PaymentMethodSetup, on_delete=models.PROTECT, related_name="verified_payment_method"
    )
    stripe_payment_method_id = models.CharField(max_length=255, unique=True)
    brand = models.CharField(max_length=32, blank=True, default="")
    last4 = models.CharField(max_length=4, blank=True, default="")
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    verified_at = models.DateTimeField(auto_now_add=True)
    detached_at = models.DateTimeField(
        null=True, blank=True, help_text="Detached from the customer: no longer usable"
    )

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4}"
