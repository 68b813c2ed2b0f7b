"""Staff view of sellers: Stripe state, history, and a link to the account in Stripe."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from gavel.connect.models import ConnectedAccount, ConnectedAccountChange, StripeLinkRequest
from gavel.connect.selectors import stripe_dashboard_url


class ConnectedAccountChangeInline(admin.TabularInline[ConnectedAccountChange, ConnectedAccount]):
    model = ConnectedAccountChange
    extra = 0
    can_delete = False
    ordering = ("-id",)
    fields = (
        "created_at",
        "source",
        "stripe_event_type",
        "stripe_event_id",
        "status_before",
        "status_after",
        "changed_fields",
    )
    readonly_fields = fields

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(ConnectedAccount)
class ConnectedAccountAdmin(admin.ModelAdmin[ConnectedAccount]):
    """Read-only: the mirror changes only through Stripe (events and refreshes)."""

    list_display = (
        "stripe_account_id",
        "user",
        "status",
        "preset",
        "stripe_api",
        "charges_enabled",
        "payouts_enabled",
        "requirements_deadline",
        "stripe_dashboard",
    )
    list_filter = ("status", "preset", "stripe_api", "livemode", "payouts_enabled")
    search_fields = ("stripe_account_id", "user__email")
    list_select_related = ("user",)
    inlines = (ConnectedAccountChangeInline,)

    def get_readonly_fields(self, request: object, obj: object = None) -> list[str]:
        return [field.name for field in ConnectedAccount._meta.fields] + ["stripe_dashboard"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False

    @admin.display(description="Stripe")
    def stripe_dashboard(self, account: ConnectedAccount) -> str:
        url = stripe_dashboard_url(account=account)
        if not url:
            return "-"
        return format_html('<a href="{}" target="_blank" rel="noopener">Dashboard</a>', url)


@admin.register(StripeLinkRequest)
class StripeLinkRequestAdmin(admin.ModelAdmin[StripeLinkRequest]):
    list_display = ("id", "account", "kind", "link_type", "succeeded", "created_at", "expires_at")
    list_filter = ("kind", "succeeded")
    readonly_fields = (
        "account",
        "kind",
        "link_type",
        "requested_by",
        "succeeded",
        "expires_at",
        "created_at",
    )

    def has_add_permission(self, request: object) -> bool:
        return False
