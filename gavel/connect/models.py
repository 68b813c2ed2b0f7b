"""A seller's Stripe connected account, mirrored; its append-only history; and the links Gavel
asked Stripe for (each row's id is the idempotency key of its Stripe call).

The mirror changes only through ``gavel.connect.services`` when an ``account.*`` event arrives or
on an explicit refresh through the gateway. Ledger account code of what Gavel owes a seller:
``seller_payable:<stripe account id>`` (``gavel.connect.selectors.seller_payable_ledger_code``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from gavel.connect.states import AccountStatus


class ConnectedAccount(models.Model):
    """One seller's Stripe account. One per user (the unique user is what makes a double-tapped
    "become a seller" create one Stripe account, with the idempotency key from this row)."""

    class StripeApi(models.TextChoices):
        V1 = "v1"  # /v1/accounts: created by Gavel, and the legacy portal's sellers
        V2 = "v2"  # /v2/core/accounts (recipient configuration), read through /v1 as well

    class Preset(models.TextChoices):
        EXPRESS = "express"
        STANDARD = "standard"
        CUSTOM = "custom"
        OTHER = "other"  # imported: not created by Gavel with one of its presets

    Status = AccountStatus

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="connected_account"
    )
    stripe_account_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_api = models.CharField(max_length=2, choices=StripeApi.choices, default=StripeApi.V1)
    preset = models.CharField(max_length=16, choices=Preset.choices)
    livemode = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=AccountStatus.choices, default=AccountStatus.CREATING
    )
    # Mirror of Stripe's state.
    charges_enabled = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    details_submitted = models.BooleanField(default=False)
    capabilities = models.JSONField(default=dict, blank=True, help_text="name -> status")
    requirements_currently_due = models.JSONField(default=list, blank=True)
    requirements_eventually_due = models.JSONField(default=list, blank=True)
    requirements_past_due = models.JSONField(default=list, blank=True)
    requirements_pending_verification = models.JSONField(default=list, blank=True)
    requirements_errors = models.JSONField(default=list, blank=True)
    requirements_deadline = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=100, blank=True, default="")
    dashboard_type = models.CharField(max_length=16, blank=True, default="")
    requirement_collection = models.CharField(max_length=16, blank=True, default="")
    country = models.CharField(max_length=2, blank=True, default="")
    default_currency = models.CharField(max_length=3, blank=True, default="")
    bank_name = models.CharField(max_length=100, blank=True, default="")
    bank_last4 = models.CharField(max_length=4, blank=True, default="")
    # Stripe's creation time of the newest event applied: an older event is not applied.
    stripe_event_created_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True, help_text="last read from Stripe")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status"], name="connect_account_status")]

    def __str__(self) -> str:
        return f"{self.stripe_account_id or 'pending'} ({self.status})"


class ConnectedAccountChange(models.Model):
    """One change of a connected account's mirror. Append-only (a database trigger refuses
    updates and deletes): a correction is a new row."""

    class Source(models.TextChoices):
        CREATE = "create"
        IMPORT = "import"
        EVENT = "event"
        REFRESH = "refresh"
        DEAUTHORIZATION = "deauthorization"

    account = models.ForeignKey(ConnectedAccount, on_delete=models.PROTECT, related_name="changes")
    source = models.CharField(max_length=16, choices=Source.choices)
    stripe_event_id = models.CharField(max_length=255, blank=True, default="")
    stripe_event_type = models.CharField(max_length=200, blank=True, default="")
    status_before = models.CharField(max_length=16, choices=AccountStatus.choices)
    status_after = models.CharField(max_length=16, choices=AccountStatus.choices)
    changed_fields = models.JSONField(default=dict, help_text="field -> [before, after]")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.status_before} -> {self.status_after}"


class StripeLinkRequest(models.Model):
    """One account link, account session or login link Gavel asked Stripe for. Its id derives
    the idempotency key; the link itself (a bearer credential) is never stored."""

    class Kind(models.TextChoices):
        ACCOUNT_LINK = "account_link"
        ACCOUNT_SESSION = "account_session"
        LOGIN_LINK = "login_link"

    account = models.ForeignKey(
        ConnectedAccount, on_delete=models.PROTECT, related_name="link_requests"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    link_type = models.CharField(max_length=32, blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    succeeded = models.BooleanField(null=True, help_text="None until Stripe answered")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} for {self.account_id}"
