"""The migration in the admin: runs and checkpoints, the quarantine, the id map, the imported
listings, indexes a first import has deferred, and the verification reports (legacy vs Gavel
side by side). Everything here is read-only: the importer and ``legacy_verify`` write these
rows, staff read them."""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib import admin
from django.db.models import Model
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from gavel.legacy.models import (
    DeferredIndex,
    ImportCheckpoint,
    ImportedListing,
    ImportRun,
    LegacyAnomaly,
    LegacyIdMap,
    VerificationReport,
)

ReadOnlyModel = TypeVar("ReadOnlyModel", bound=Model)
SELLER_SECTIONS = ("seller transferred", "seller pending")


class ReadOnlyAdmin(admin.ModelAdmin[ReadOnlyModel]):
    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class CheckpointInline(admin.TabularInline[ImportCheckpoint, ImportRun]):
    model = ImportCheckpoint
    fields = ("table", "last_key", "rows_read", "rows_changed", "is_finished", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdmin[ImportRun]):
    list_display = ("id", "mode", "status", "is_dry_run", "source", "since", "started_at")
    list_filter = ("mode", "status")
    inlines = (CheckpointInline,)


@admin.register(LegacyAnomaly)
class LegacyAnomalyAdmin(ReadOnlyAdmin[LegacyAnomaly]):
    list_display = (
        "kind",
        "legacy_table",
        "legacy_id",
        "is_blocking",
        "details",
        "run",
        "resolved_run",
    )
    list_filter = (
        "kind",
        "is_blocking",
        "legacy_table",
        ("resolved_run", admin.EmptyFieldListFilter),
    )
    search_fields = ("legacy_id",)


@admin.register(DeferredIndex)
class DeferredIndexAdmin(ReadOnlyAdmin[DeferredIndex]):
    """Indexes and foreign keys a first import dropped and has not restored yet (ADR 0011,
    ADR 0012): empty except while one runs, or after one stopped (``manage.py legacy_import
    --restore-indexes``)."""

    list_display = ("name", "kind", "table", "run", "deferred_at")
    list_filter = ("kind",)


@admin.register(LegacyIdMap)
class LegacyIdMapAdmin(ReadOnlyAdmin[LegacyIdMap]):
    list_display = ("kind", "legacy_id", "gavel_model", "gavel_id")
    list_filter = ("kind",)
    search_fields = ("legacy_id",)


@admin.register(ImportedListing)
class ImportedListingAdmin(ReadOnlyAdmin[ImportedListing]):
    """The catalogue of what sellers offered on the portal (history: never for sale)."""

    list_display = ("legacy_id", "title", "seller", "price_minor", "currency", "status")
    list_filter = ("status", "currency")
    search_fields = ("legacy_id", "title", "seller__email")
    list_select_related = ("seller",)


@admin.register(VerificationReport)
class VerificationReportAdmin(ReadOnlyAdmin[VerificationReport]):
    list_display = ("id", "created_at", "difference_count", "run")
    fields = ("created_at", "run", "difference_count", "side_by_side")
    readonly_fields = fields

    @admin.display(description="Legacy vs Gavel")
    def side_by_side(self, report: VerificationReport) -> SafeString:
        """Every row except per-seller rows that agree (those are counted, not listed)."""
        shown = [
            row
            for row in report.rows
            if row["difference"] != 0 or not row["section"].startswith(SELLER_SECTIONS)
        ]
        hidden = len(report.rows) - len(shown)
        body = format_html_join(
            "",
            '<tr{}><td>{}</td><td>{}</td><td style="text-align:right">{}</td>'
            '<td style="text-align:right">{}</td><td style="text-align:right">{}</td>'
            '<td style="text-align:right">{}</td></tr>',
            (
                (
                    SafeString(' style="background:#fdd"') if row["difference"] else "",
                    row["section"],
                    row["key"],
                    row["legacy"],
                    row["gavel"],
                    row["quarantined"],
                    row["difference"],
                )
                for row in shown
            ),
        )
        return format_html(
            "<p>{} per-seller rows agree and are not listed.</p><table><thead><tr>"
            "<th>section</th><th>key</th><th>legacy</th><th>gavel</th><th>quarantined</th>"
            "<th>difference</th></tr></thead><tbody>{}</tbody></table>",
            hidden,
            body,
        )
