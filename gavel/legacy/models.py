"""The legacy import's own tables: runs and checkpoints, the id map, the quarantine, the
verification reports, and the staging tables (stage one's intermediate form).

Staging rows hold the legacy values as read (currency as stored, Stripe ids as stored), with
``staged_run_id`` = the run that last changed them, so stage two loads only what changed.
They stay the home of connected accounts, listings, orders and payments until the Connect,
auctions and payments apps expose services to load them into (docs/legacy-migration.md).
"""

# Staging columns mirror the legacy ones, where NULL and "" are different facts (an empty
# Stripe id is an anomaly, a missing one is not), so string columns may be null.
# ruff: noqa: DJ001
from __future__ import annotations

from django.db import models


class ImportRun(models.Model):
    """One execution of ``legacy_import`` (full or delta); resumable until finished."""

    class Mode(models.TextChoices):
        FULL = "full"
        DELTA = "delta"

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    mode = models.CharField(max_length=8, choices=Mode.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    is_dry_run = models.BooleanField(default=False)
    source = models.CharField(max_length=300, help_text="legacy host and database, no password")
    # Legacy clock when the run started: the next delta run reads rows updated since then.
    watermark = models.DateTimeField()
    since = models.DateTimeField(null=True, blank=True, help_text="delta: rows updated since")
    stats = models.JSONField(default=dict)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"import #{self.pk} {self.mode} {self.status}"


class ImportCheckpoint(models.Model):
    """The last legacy key a run has staged from one table (keyset order)."""

    run = models.ForeignKey(ImportRun, on_delete=models.CASCADE, related_name="checkpoints")
    table = models.CharField(max_length=64)
    last_key = models.CharField(max_length=64, blank=True, default="")
    rows_read = models.BigIntegerField(default=0)
    rows_changed = models.BigIntegerField(default=0)
    is_finished = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "table"], name="legacy_checkpoint_run_table")
        ]

    def __str__(self) -> str:
        return f"{self.table} > {self.last_key}"


class DeferredIndex(models.Model):
    """A secondary index (ADR 0011) or a foreign key (ADR 0012) a first import dropped from an
    empty Gavel table, to build or validate it once after loading instead of keeping it up to
    date row by row. Recorded in the transaction that drops it and deleted in the one that
    restores it, so the database always knows what is missing, whatever stops the run."""

    class Kind(models.TextChoices):
        INDEX = "index"
        FOREIGN_KEY = "foreign_key"

    name = models.CharField(max_length=63, unique=True)
    table = models.CharField(max_length=63)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.INDEX)
    # An index: pg_get_indexdef(), CREATE INDEX <name> ON ...; a foreign key:
    # pg_get_constraintdef(), FOREIGN KEY (<column>) REFERENCES <table>(<column>) ...
    definition = models.TextField()
    run = models.ForeignKey(ImportRun, on_delete=models.PROTECT, related_name="deferred_indexes")
    deferred_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.name} on {self.table} (deferred by run {self.run_id})"


class LegacyIdMap(models.Model):
    """Legacy id -> Gavel row (Zulip's IdMapper, persisted): ``person`` -> users.User, ..."""

    kind = models.CharField(max_length=32)
    legacy_id = models.CharField(max_length=64)
    gavel_model = models.CharField(max_length=64)
    gavel_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "legacy_id"], name="legacy_idmap_kind_id")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.legacy_id} -> {self.gavel_model}:{self.gavel_id}"


class LegacyAnomaly(models.Model):
    """A legacy row the importer found wrong. Blocking anomalies keep the row out of the load;
    nothing is dropped silently: every skipped row is here."""

    kind = models.CharField(max_length=40)
    legacy_table = models.CharField(max_length=64)
    legacy_id = models.CharField(max_length=64)
    is_blocking = models.BooleanField()
    details = models.JSONField(default=dict)
    run = models.ForeignKey(ImportRun, on_delete=models.PROTECT, related_name="anomalies")
    detected_at = models.DateTimeField(auto_now_add=True)
    # The run that staged the row again and no longer found the anomaly (the portal fixed the
    # row): kept as the record of what was found, no longer holding the row back. A row check
    # that finds it again opens it again.
    resolved_run = models.ForeignKey(
        ImportRun,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="resolved_anomalies",
    )

    class Meta:
        verbose_name_plural = "legacy anomalies"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "legacy_table", "legacy_id"], name="legacy_anomaly_unique"
            )
        ]
        indexes = [models.Index(fields=["legacy_table", "legacy_id"], name="legacy_anomaly_row")]

    def __str__(self) -> str:
        return f"{self.kind} {self.legacy_table}#{self.legacy_id}"


class VerificationReport(models.Model):
    """Legacy vs Gavel, side by side; ``difference_count`` must be zero before cutover."""

    run = models.ForeignKey(ImportRun, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    difference_count = models.IntegerField()
    rows = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"verification #{self.pk}: {self.difference_count} differences"


class StagedRow(models.Model):
    staged_run_id = models.BigIntegerField(db_index=True)
    legacy_created_at = models.DateTimeField()
    legacy_updated_at = models.DateTimeField()

    class Meta:
        abstract = True


class LegacyPerson(StagedRow):
    legacy_id = models.CharField(max_length=22, primary_key=True)
    uuid = models.UUIDField()
    community_id = models.IntegerField()
    username = models.CharField(max_length=255)
    email = models.CharField(max_length=255, null=True)
    given_name = models.CharField(max_length=255, null=True)
    family_name = models.CharField(max_length=255, null=True)
    display_name = models.CharField(max_length=255, null=True)
    phone_number = models.CharField(max_length=255, null=True)
    is_admin = models.BooleanField()
    locale = models.CharField(max_length=255, null=True)
    is_deleted = models.BooleanField()

    def __str__(self) -> str:
        return f"LegacyPerson {self.legacy_id}"


class LegacyStripeAccount(StagedRow):
    """A person's Stripe ids: connected account (seller), bank account, customer (buyer)."""

    legacy_id = models.BigIntegerField(primary_key=True)
    person_legacy_id = models.CharField(max_length=22, null=True, db_index=True)
    community_id = models.IntegerField(null=True)
    stripe_seller_id = models.CharField(max_length=255, null=True)
    stripe_bank_id = models.CharField(max_length=255, null=True)
    stripe_customer_id = models.CharField(max_length=255, null=True)
    api_version = models.CharField(max_length=255, null=True)

    def __str__(self) -> str:
        return f"LegacyStripeAccount {self.legacy_id}"


class LegacyListing(StagedRow):
    legacy_id = models.BigIntegerField(primary_key=True)
    uuid = models.UUIDField()
    community_id = models.IntegerField()
    author_legacy_id = models.CharField(max_length=22, null=True)
    title = models.CharField(max_length=255, null=True)
    description = models.TextField(null=True)
    price_cents = models.BigIntegerField(null=True)
    currency = models.CharField(max_length=255, null=True)
    shipping_price_cents = models.BigIntegerField(null=True)
    is_open = models.BooleanField(null=True)
    is_deleted = models.BooleanField(null=True)
    state = models.CharField(max_length=255, null=True)

    def __str__(self) -> str:
        return f"LegacyListing {self.legacy_id}"


class LegacyOrder(StagedRow):
    """A legacy ``transactions`` row: one purchase of a listing, with its commission terms."""

    legacy_id = models.BigIntegerField(primary_key=True)
    starter_legacy_id = models.CharField(max_length=22)
    listing_legacy_id = models.BigIntegerField()
    listing_author_legacy_id = models.CharField(max_length=22)
    community_id = models.IntegerField()
    current_state = models.CharField(max_length=64, null=True)
    last_transition_at = models.DateTimeField(null=True)
    payment_gateway = models.CharField(max_length=16)
    payment_process = models.CharField(max_length=16, null=True)
    commission_from_seller = models.DecimalField(max_digits=6, decimal_places=3, null=True)
    minimum_commission_cents = models.BigIntegerField(null=True)
    minimum_commission_currency = models.CharField(max_length=255, null=True)
    commission_from_buyer = models.DecimalField(max_digits=6, decimal_places=3, null=True)
    minimum_buyer_fee_cents = models.BigIntegerField(null=True)
    minimum_buyer_fee_currency = models.CharField(max_length=255, null=True)
    listing_quantity = models.IntegerField(null=True)
    unit_price_cents = models.BigIntegerField(null=True)
    unit_price_currency = models.CharField(max_length=255, null=True)
    shipping_price_cents = models.BigIntegerField(null=True)
    automatic_confirmation_after_days = models.IntegerField()
    is_deleted = models.BooleanField(null=True)
    # Set from the quarantine after each run: a blocking anomaly keeps the order out of the load.
    is_quarantined = models.BooleanField(default=False, db_default=False)

    def __str__(self) -> str:
        return f"LegacyOrder {self.legacy_id}"


class LegacyOrderTransition(StagedRow):
    """One step of a legacy transaction's state history (append-only, as the portal kept it)."""

    legacy_id = models.BigIntegerField(primary_key=True)
    transaction_legacy_id = models.BigIntegerField(null=True)
    to_state = models.CharField(max_length=64, null=True)
    metadata = models.TextField(null=True)
    sort_key = models.IntegerField(null=True)
    is_most_recent = models.BooleanField(null=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["transaction_legacy_id", "sort_key"], name="legacy_transition_order"
            )
        ]

    def __str__(self) -> str:
        return f"LegacyOrderTransition {self.legacy_id}"


class LegacyPayment(StagedRow):
    """A legacy ``stripe_payments`` row; amounts are integer cents as the portal stored them."""

    legacy_id = models.BigIntegerField(primary_key=True)
    transaction_legacy_id = models.BigIntegerField(null=True, db_index=True)
    payer_legacy_id = models.CharField(max_length=22, null=True)
    receiver_legacy_id = models.CharField(max_length=22, null=True, db_index=True)
    community_id = models.IntegerField(null=True)
    status = models.CharField(max_length=32, null=True)
    sum_cents = models.BigIntegerField(null=True)
    subtotal_cents = models.BigIntegerField(null=True)
    commission_cents = models.BigIntegerField(null=True)
    buyer_commission_cents = models.BigIntegerField(null=True)
    fee_cents = models.BigIntegerField(null=True)
    real_fee_cents = models.BigIntegerField(null=True)
    currency = models.CharField(max_length=255, null=True, help_text="as stored by the portal")
    stripe_charge_id = models.CharField(max_length=255, null=True)
    stripe_payment_intent_id = models.CharField(max_length=255, null=True)
    stripe_payment_intent_status = models.CharField(max_length=32, null=True)
    stripe_transfer_id = models.CharField(max_length=255, null=True)
    transfered_at = models.DateTimeField(null=True)
    available_on = models.DateTimeField(null=True)
    # Set from the quarantine after each run: quarantined payments post nothing to the ledger.
    is_quarantined = models.BooleanField(default=False, db_default=False)

    def __str__(self) -> str:
        return f"LegacyPayment {self.legacy_id}"


class LegacyPaymentSetting(StagedRow):
    """Per community and gateway terms. The portal's API keys are never read."""

    legacy_id = models.BigIntegerField(primary_key=True)
    is_active = models.BooleanField()
    community_id = models.IntegerField()
    payment_gateway = models.CharField(max_length=64, null=True)
    payment_process = models.CharField(max_length=64, null=True)
    commission_from_seller = models.DecimalField(max_digits=6, decimal_places=3, null=True)
    minimum_transaction_fee_cents = models.BigIntegerField(null=True)
    minimum_transaction_fee_currency = models.CharField(max_length=255, null=True)
    commission_from_buyer = models.DecimalField(max_digits=6, decimal_places=3, null=True)
    minimum_buyer_transaction_fee_cents = models.BigIntegerField(null=True)
    minimum_buyer_transaction_fee_currency = models.CharField(max_length=255, null=True)
    confirmation_after_days = models.IntegerField()

    def __str__(self) -> str:
        return f"LegacyPaymentSetting {self.legacy_id}"


class ImportedListing(models.Model):
    """A legacy listing in Gavel's catalogue: what a seller offered on the portal and what its
    imported orders bought. Read-only history: never biddable. A listing still open on the
    portal at the cutover is marked ``open_at_cutover`` so its seller can relist it as an
    auction; nothing is put up for auction on the seller's behalf. A delta import updates the
    row when the portal changed the listing (``legacy_id`` is unique)."""

    class Status(models.TextChoices):
        CLOSED = "closed"
        OPEN_AT_CUTOVER = "open_at_cutover"
        DELETED = "deleted"

    legacy_id = models.BigIntegerField(unique=True)
    seller = models.ForeignKey(
        "users.User", on_delete=models.PROTECT, related_name="imported_listings"
    )
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    price_minor = models.BigIntegerField(help_text="unit price")
    shipping_minor = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices)
    listed_at = models.DateTimeField(help_text="created on the portal")
    legacy_updated_at = models.DateTimeField()
    imported_run_id = models.BigIntegerField(help_text="the import run that last wrote the row")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price_minor__gte=0) & models.Q(shipping_minor__gte=0),
                name="legacy_imported_listing_money_not_negative",
            )
        ]
        indexes = [models.Index(fields=["seller", "listed_at"], name="legacy_listing_seller")]

    def __str__(self) -> str:
        return f"{self.title} (legacy listing {self.legacy_id})"


class ImportedListingOrderLine(models.Model):
    """Which imported listing an imported order line bought (the portal's
    ``transactions.listing_id``); one listing may have been bought many times."""

    # The line is the key: no sequence and second index of its own for each of a million
    # links a first import writes.
    order_line = models.OneToOneField(
        "payments.OrderLine",
        on_delete=models.PROTECT,
        primary_key=True,
        related_name="imported_listing_link",
    )
    listing = models.ForeignKey(
        ImportedListing, on_delete=models.PROTECT, related_name="order_line_links"
    )

    def __str__(self) -> str:
        return f"order line {self.order_line_id} -> legacy listing {self.listing_id}"
