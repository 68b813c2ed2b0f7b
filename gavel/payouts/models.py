"""Payouts of sellers' connected balances to their banks (manual payout schedule)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class PayoutRun(models.Model):
    """One pass of the payout run (beat). Append-only apart from its counters at the end."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    accounts_seen = models.PositiveIntegerField(default=0)
    payouts_created = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"Payout run {self.pk}"


class Payout(models.Model):
    """One payout of one connected account in one currency. Row id = operation id."""

    class Status(models.TextChoices):
        CREATING = "creating"
        UNKNOWN = "unknown"
        PENDING = "pending"
        IN_TRANSIT = "in_transit"
        PAID = "paid"
        FAILED = "failed"
        CANCELED = "canceled"

    account_id = models.CharField(max_length=255, db_index=True)
    run = models.ForeignKey(
        PayoutRun, on_delete=models.PROTECT, null=True, blank=True, related_name="payouts"
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.CREATING, db_index=True
    )
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    stripe_payout_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    destination = models.CharField(max_length=255, blank=True, default="")
    failure_code = models.CharField(max_length=100, blank=True, default="")
    failure_message = models.CharField(max_length=500, blank=True, default="")
    # A bank failure blocks the account's next payouts until its bank account changes.
    blocks_until_bank_changes = models.BooleanField(default=False)
    seller_notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="payout_amount_positive"),
            models.UniqueConstraint(
                fields=["account_id", "currency"],
                condition=Q(status__in=["creating", "unknown"]),
                name="payout_one_open_per_account_currency",
            ),
        ]

    def __str__(self) -> str:
        return f"Payout {self.pk} ({self.status})"


class PayoutAccount(models.Model):
    """A connected account the payout run pays; the row id is the operation id of putting it
    on a manual payout schedule (done once, before its first payout)."""

    account_id = models.CharField(max_length=255, unique=True)
    manual_schedule_set_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.account_id
