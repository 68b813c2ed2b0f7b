from typing import TypeVar

from django.contrib import admin

from gavel.ledger.models import JournalEntry, LedgerAccount, Posting

LedgerModel = TypeVar("LedgerModel", LedgerAccount, JournalEntry, Posting)


class ReadOnlyAdmin(admin.ModelAdmin[LedgerModel]):
    """The ledger is append-only: the admin reads it and never edits it."""

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


class PostingInline(admin.TabularInline[Posting, JournalEntry]):
    model = Posting
    fields = ("account", "amount_minor", "currency")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin[JournalEntry]):
    list_display = ("id", "kind", "reference", "occurred_at")
    list_filter = ("kind",)
    search_fields = ("reference", "description")
    inlines = (PostingInline,)


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin[LedgerAccount]):
    list_display = ("code", "kind", "created_at")
    list_filter = ("kind",)
    search_fields = ("code",)
