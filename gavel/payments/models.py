"""Orders, their payments (one PaymentIntent per attempt), transfers to sellers, refunds,
disputes, holds, and the append-only records around them.

Money is integer minor units plus the order's currency. ``OrderTransition``, ``PaymentEvent``
and ``AuditLogEntry`` are append-only (PostgreSQL triggers refuse updates and deletes): a
correction is a new row. Order status changes go through ``gavel.payments.states`` only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Order(models.Model):
    """What one buyer pays in one checkout: one or more lots, possibly from several sellers.

    Its status is the payment state machine (docs/payments.md); ``captured_minor``,
    ``refunded_minor`` and ``disputed_minor`` are running totals of recorded payment events.
    """

    class Status(models.TextChoices):
        PENDING = "pending"  # created, no payment attempted yet
        UNKNOWN = "unknown"  # an attempt's outcome is not known yet (janitor settles it)
        REQUIRES_ACTION = "requires_action"  # the buyer must finish 3-D Secure
        FAILED = "failed"  # declined; the buyer may pay with another method
        AUTHORIZED = "authorized"  # authorized, not captured (manual capture)
        CAPTURED = "captured"
        PARTIALLY_REFUNDED = "partially_refunded"
        REFUNDED = "refunded"
        CANCELED = "canceled"
        DISPUTED = "disputed"  # frozen: no transfer, refund or payout moves for it
        DISPUTE_LOST = "dispute_lost"

    class Kind(models.TextChoices):
        AUCTION = "auction"  # won auctions (and second-chance sales) in one checkout
        BUY_NOW = "buy_now"
        LEGACY = "legacy"

    class FundsFlow(models.TextChoices):
        SEPARATE_TRANSFERS = "separate_transfers"
        DESTINATION_CHARGE = "destination_charge"

    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payment_orders"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    funds_flow = models.CharField(max_length=24, choices=FundsFlow.choices)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.PENDING)
    subtotal_minor = models.BigIntegerField(help_text="sum of hammer prices")
    buyers_premium_minor = models.BigIntegerField(default=0)
    buyer_fees_minor = models.BigIntegerField(default=0)
    commission_minor = models.BigIntegerField(default=0)
    total_minor = models.BigIntegerField(help_text="what the buyer pays")
    captured_minor = models.BigIntegerField(default=0)
    refunded_minor = models.BigIntegerField(default=0)
    disputed_minor = models.BigIntegerField(default=0)
    stripe_fee_minor = models.BigIntegerField(default=0)
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True, default="")
    stripe_charge_id = models.CharField(max_length=255, blank=True, default="")
    captured_at = models.DateTimeField(null=True, blank=True)
    transfers_release_after = models.DateTimeField(null=True, blank=True, db_index=True)
    receipt_confirmed_at = models.DateTimeField(null=True, blank=True)
    legacy_reference = models.CharField(max_length=200, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Plain btrees in Meta.indexes, not db_index=True: on PostgreSQL that would add a second
        # varchar_pattern_ops index for LIKE 'prefix%' that no query uses (docs/adr/0009).
        indexes = [
            models.Index(fields=["status"], name="order_status"),
            models.Index(fields=["stripe_charge_id"], name="order_stripe_charge_id"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(total_minor__gt=0), name="order_total_positive"),
            models.CheckConstraint(
                condition=Q(refunded_minor__lte=models.F("captured_minor")),
                name="order_refund_within_capture",
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.status})"

    @property
    def transfer_group(self) -> str:
        return f"order_{self.pk}"


class OrderLine(models.Model):
    """One lot of an order, with its fee breakdown frozen at checkout."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="lines")
    sale = models.OneToOneField(
        "auctions.Sale",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="order_line",
    )
    seller = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payment_order_lines"
    )
    seller_account_id = models.CharField(max_length=255)
    category = models.CharField(max_length=64, blank=True, default="")
    description = models.CharField(max_length=300, blank=True, default="")
    hammer_minor = models.BigIntegerField()
    buyers_premium_minor = models.BigIntegerField(default=0)
    buyer_fee_minor = models.BigIntegerField(default=0)
    commission_minor = models.BigIntegerField(default=0)
    seller_net_minor = models.BigIntegerField(help_text="hammer less commission")
    total_minor = models.BigIntegerField(help_text="hammer + premium + buyer fee")
    # Running totals (changed with F() expressions under the order's lock).
    refunded_seller_minor = models.BigIntegerField(default=0)
    refunded_commission_minor = models.BigIntegerField(default=0)
    refunded_premium_minor = models.BigIntegerField(default=0)
    refunded_absorbed_minor = models.BigIntegerField(default=0)
    disputed_seller_minor = models.BigIntegerField(default=0)
    transferred_minor = models.BigIntegerField(default=0)
    reversed_minor = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["seller_account_id"], name="orderline_seller_account_id")]
        constraints = [
            models.CheckConstraint(condition=Q(hammer_minor__gt=0), name="line_hammer_positive"),
            models.CheckConstraint(
                condition=Q(
                    total_minor=models.F("hammer_minor")
                    + models.F("buyers_premium_minor")
                    + models.F("buyer_fee_minor")
                ),
                name="line_total_is_sum",
            ),
            models.CheckConstraint(
                condition=Q(
                    seller_net_minor=models.F("hammer_minor") - models.F("commission_minor")
                ),
                name="line_net_is_hammer_less_commission",
            ),
        ]

    def __str__(self) -> str:
        return f"Line {self.pk} of order {self.order_id}"

    @property
    def refunded_minor(self) -> int:
        return (
            self.refunded_seller_minor
            + self.refunded_commission_minor
            + self.refunded_premium_minor
            + self.refunded_absorbed_minor
        )


class OrderTransition(models.Model):
    """Append-only history of an order's status: one row per move."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="transitions")
    from_status = models.CharField(max_length=24, blank=True, default="")
    to_status = models.CharField(max_length=24)
    operation = models.CharField(max_length=32)
    reason = models.CharField(max_length=300, blank=True, default="")
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status} ({self.operation})"


class PaymentAttempt(models.Model):
    """One PaymentIntent. The row id is its operation id: a retry of the same attempt sends the
    same idempotency key; a new payment method is a new attempt (a new row, a new key)."""

    class Status(models.TextChoices):
        CREATING = "creating"  # row written; the request may not have reached Stripe
        UNKNOWN = "unknown"  # Stripe may have applied it; the janitor re-reads
        PROCESSING = "processing"
        REQUIRES_ACTION = "requires_action"
        REQUIRES_PAYMENT_METHOD = "requires_payment_method"  # declined
        REQUIRES_CAPTURE = "requires_capture"
        SUCCEEDED = "succeeded"
        CANCELED = "canceled"
        FAILED = "failed"  # refused for good before any PaymentIntent existed

    class Purpose(models.TextChoices):
        ORDER = "order"
        HOLD = "hold"

    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, null=True, blank=True, related_name="attempts"
    )
    purpose = models.CharField(max_length=8, choices=Purpose.choices, default=Purpose.ORDER)
    status = models.CharField(
        max_length=24, choices=Status.choices, default=Status.CREATING, db_index=True
    )
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    capture_manually = models.BooleanField(default=False)
    stripe_customer_id = models.CharField(max_length=255)
    stripe_payment_method_id = models.CharField(max_length=255)
    stripe_payment_intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_charge_id = models.CharField(max_length=255, blank=True, default="")
    error_code = models.CharField(max_length=100, blank=True, default="")
    decline_code = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="attempt_amount_positive")
        ]

    def __str__(self) -> str:
        return f"Attempt {self.pk} ({self.status})"


class PaymentEvent(models.Model):
    """Append-only facts about an order's money (Saleor's TransactionEvent): requests,
    successes, failures, webhooks seen (late ones included, which change nothing)."""

    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    type = models.CharField(max_length=64, db_index=True)
    amount_minor = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, blank=True, default="")
    stripe_object_id = models.CharField(max_length=255, blank=True, default="")
    stripe_event_id = models.CharField(max_length=255, blank=True, default="")
    applied = models.BooleanField(default=True, help_text="False: recorded, changed nothing")
    message = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_event_id", "type"],
                condition=~Q(stripe_event_id=""),
                name="payment_event_once_per_stripe_event",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.amount_minor} {self.currency}"


class SellerTransfer(models.Model):
    """A transfer to a seller's connected account for one order line. Row id = operation id."""

    class Kind(models.TextChoices):
        SALE = "sale"  # separate transfer of the seller's net
        DESTINATION = "destination"  # made by Stripe for a destination charge
        REINSTATEMENT = "reinstatement"  # dispute won: what was reversed goes back
        # a refund Stripe failed after Gavel booked it: the seller's share it took goes back
        REFUND_FAILED = "refund_failed"

    class Status(models.TextChoices):
        CREATING = "creating"
        UNKNOWN = "unknown"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="transfers")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SALE)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.CREATING, db_index=True
    )
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    destination_account_id = models.CharField(max_length=255)
    stripe_transfer_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    error_code = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_minor__gt=0), name="transfer_amount_positive"
            ),
            models.UniqueConstraint(
                fields=["line"],
                condition=Q(kind="sale") & ~Q(status="failed"),
                name="transfer_one_live_sale_transfer_per_line",
            ),
        ]

    def __str__(self) -> str:
        return f"Transfer {self.pk} ({self.status})"


class Refund(models.Model):
    """A refund to the buyer. A buyer's request waits for staff (REQUESTED); staff refunds go
    straight to CREATING. Row id = operation id. ``allocation`` is the per-line split fixed when
    the refund was approved; ``booked_lines`` what booking it took from each line's running
    totals (given back if Stripe fails the refund afterwards). Status moves go through
    ``gavel.payments.states.refund_transition`` (history: ``RefundTransition``)."""

    class Status(models.TextChoices):
        REQUESTED = "requested"
        REJECTED = "rejected"
        CREATING = "creating"
        UNKNOWN = "unknown"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.CREATING, db_index=True
    )
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=500, blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    allocation = models.JSONField(default=list, blank=True)
    booked_lines = models.JSONField(
        default=list,
        blank=True,
        help_text="per line, the minor units booking took: seller, absorbed, commission,"
        " premium, reversed (destination charges)",
    )
    stripe_refund_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    error_code = models.CharField(max_length=100, blank=True, default="")
    failure_reason = models.CharField(
        max_length=100, blank=True, default="", help_text="Stripe's failure_reason, if it failed"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="refund_amount_positive")
        ]

    def __str__(self) -> str:
        return f"Refund {self.pk} ({self.status})"


class RefundTransition(models.Model):
    """Append-only history of a refund's status: one row per move."""

    refund = models.ForeignKey(Refund, on_delete=models.PROTECT, related_name="transitions")
    from_status = models.CharField(max_length=16)
    to_status = models.CharField(max_length=16)
    operation = models.CharField(max_length=32)
    reason = models.CharField(max_length=300, blank=True, default="")
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.from_status} -> {self.to_status} ({self.operation})"


class Dispute(models.Model):
    """A chargeback on an order's charge, mirrored from Stripe."""

    class Outcome(models.TextChoices):
        OPEN = "open"
        WON = "won"
        LOST = "lost"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="disputes")
    stripe_dispute_id = models.CharField(max_length=255, unique=True)
    stripe_status = models.CharField(max_length=32)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.OPEN)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=64, blank=True, default="")
    evidence_due_at = models.DateTimeField(null=True, blank=True)
    evidence_submitted_at = models.DateTimeField(null=True, blank=True)
    recovered_from_sellers_minor = models.BigIntegerField(default=0)
    withdrawal_booked_minor = models.BigIntegerField(
        default=0,
        help_text="withdrawn amount (minor units) already posted to disputes:pending before"
        " Gavel knew the dispute: a legacy order imported disputed",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Dispute {self.stripe_dispute_id} ({self.outcome})"


class TransferReversal(models.Model):
    """Money taken back from a seller's transfer, for a refund or a dispute. Row id =
    operation id."""

    class Status(models.TextChoices):
        CREATING = "creating"
        UNKNOWN = "unknown"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    transfer = models.ForeignKey(SellerTransfer, on_delete=models.PROTECT, related_name="reversals")
    refund = models.ForeignKey(
        Refund, on_delete=models.PROTECT, null=True, blank=True, related_name="reversals"
    )
    dispute = models.ForeignKey(
        Dispute, on_delete=models.PROTECT, null=True, blank=True, related_name="reversals"
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.CREATING, db_index=True
    )
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    stripe_reversal_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    error_code = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_minor__gt=0), name="reversal_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(refund__isnull=False) | Q(dispute__isnull=False),
                name="reversal_has_a_cause",
            ),
        ]

    def __str__(self) -> str:
        return f"Reversal {self.pk} ({self.status})"


class Hold(models.Model):
    """A manual-capture authorization (or deposit) a bidder places to bid above an auction's
    hold threshold. Stripe cancels an uncaptured authorization after 7 days; the hold is
    renewed before that (docs/payments.md, "Holds")."""

    class Status(models.TextChoices):
        CREATING = "creating"
        UNKNOWN = "unknown"
        REQUIRES_ACTION = "requires_action"
        AUTHORIZED = "authorized"
        CAPTURED = "captured"
        RELEASED = "released"
        EXPIRED = "expired"
        FAILED = "failed"

    auction = models.ForeignKey(
        "auctions.Auction", on_delete=models.PROTECT, related_name="payment_holds"
    )
    bidder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payment_holds"
    )
    attempt = models.OneToOneField(PaymentAttempt, on_delete=models.PROTECT, related_name="hold")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.CREATING, db_index=True
    )
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, null=True, blank=True, related_name="holds"
    )
    captured_minor = models.BigIntegerField(default=0)
    replaced_by = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="replaces"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Hold {self.pk} ({self.status})"


class FeeSchedule(models.Model):
    """A seller-commission rule overriding the default (settings): for one category, or for
    one seller (a seller's rule beats a category's). Amounts in minor units of ``currency``."""

    class Scope(models.TextChoices):
        CATEGORY = "category"
        SELLER = "seller"

    scope = models.CharField(max_length=16, choices=Scope.choices)
    category = models.CharField(max_length=64, blank=True, default="")
    seller = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    currency = models.CharField(max_length=3)
    rate_bps = models.PositiveIntegerField()
    fixed_minor = models.BigIntegerField(default=0)
    minimum_minor = models.BigIntegerField(default=0)
    maximum_minor = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["category", "currency"],
                condition=Q(scope="category"),
                name="fee_schedule_one_per_category",
            ),
            models.UniqueConstraint(
                fields=["seller", "currency"],
                condition=Q(scope="seller"),
                name="fee_schedule_one_per_seller",
            ),
            models.CheckConstraint(
                condition=(Q(scope="category") & ~Q(category=""))
                | (Q(scope="seller") & Q(seller__isnull=False)),
                name="fee_schedule_scope_has_key",
            ),
            models.CheckConstraint(condition=Q(rate_bps__lte=10_000), name="fee_rate_at_most_100"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.category or self.seller_id}: {self.rate_bps} bps"


class SellerBalanceFlag(models.Model):
    """A seller payable that went negative (only a dispute can do that): for staff to follow
    up. Append-only; ``cleared_at`` is the only field ever set later."""

    account_id = models.CharField(max_length=255, db_index=True)
    currency = models.CharField(max_length=3)
    balance_minor = models.BigIntegerField()
    dispute = models.ForeignKey(Dispute, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    cleared_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.account_id} {self.balance_minor} {self.currency}"


class AuditLogEntry(models.Model):
    """Who did what to which money object, and when (staff actions). Append-only."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "audit log entries"

    def __str__(self) -> str:
        return f"{self.actor_id} {self.action} {self.object_type}:{self.object_id}"
