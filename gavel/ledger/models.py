"""The double-entry ledger. Append-only: a correction is a new entry, never an edit.

Sign convention: a posting's ``amount_minor`` is positive for a debit and negative for a
credit. Every journal entry sums to zero in each currency (checked by ``entry_post`` and by a
statement-level database trigger on PostgreSQL: an entry's postings are inserted in one
statement), so the whole ledger always sums to zero.
"""

from __future__ import annotations

from django.db import models


class LedgerAccount(models.Model):
    """A named account: ``platform:stripe_balance``, ``seller_payable:acct_123``, ..."""

    class Kind(models.TextChoices):
        ASSET = "asset"
        LIABILITY = "liability"
        REVENUE = "revenue"
        EXPENSE = "expense"
        EQUITY = "equity"

    code = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.code


class JournalEntry(models.Model):
    """One money movement, posted once: ``reference`` is unique (the operation's own id)."""

    reference = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=64)
    description = models.CharField(max_length=500, blank=True, default="")
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "journal entries"

    def __str__(self) -> str:
        return f"{self.kind}:{self.reference}"


class Posting(models.Model):
    """One line of an entry: a debit (positive) or credit (negative) to one account."""

    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    # No index of its own: ``posting_account_currency`` leads with it (docs/adr/0009).
    account = models.ForeignKey(
        LedgerAccount, on_delete=models.PROTECT, related_name="postings", db_index=False
    )
    amount_minor = models.BigIntegerField(help_text="minor units; debit positive, credit negative")
    currency = models.CharField(max_length=3)

    class Meta:
        indexes = [models.Index(fields=["account", "currency"], name="posting_account_currency")]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(amount_minor=0), name="posting_amount_nonzero"
            )
        ]

    def __str__(self) -> str:
        return f"{self.account.code} {self.amount_minor} {self.currency}"


class BalanceTransactionLink(models.Model):
    """Which posting a Stripe balance transaction became: the key of reconciliation.

    One row per balance transaction (``txn_...``) of the platform (``stripe_account`` empty)
    or of a connected account. ``amount_minor`` is the transaction's ``net`` and equals the
    posting to ``platform:stripe_balance`` or ``connected_balance:<acct>``. Append-only.
    """

    balance_transaction_id = models.CharField(max_length=255, unique=True)
    stripe_account = models.CharField(max_length=255, blank=True, default="", db_index=True)
    entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, related_name="balance_transaction_links"
    )
    source_id = models.CharField(max_length=255, blank=True, default="")
    type = models.CharField(max_length=64, blank=True, default="")
    amount_minor = models.BigIntegerField(help_text="the balance transaction's net, minor units")
    currency = models.CharField(max_length=3)
    stripe_created_at = models.DateTimeField(
        null=True, blank=True, help_text="when Stripe created the balance transaction"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.balance_transaction_id} -> {self.entry_id}"
