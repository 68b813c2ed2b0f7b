"""Operations: find events by event id, type, object id, account and status; read every
attempt; replay dead-lettered or ignored events."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from gavel.webhooks.models import WebhookAttempt, WebhookEvent, WebhookObjectCursor
from gavel.webhooks.services.replay import events_replay


class WebhookAttemptInline(admin.TabularInline[WebhookAttempt, WebhookEvent]):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("number", "action", "outcome", "started_at", "finished_at", "worker", "error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: WebhookEvent | None = None) -> bool:
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin[WebhookEvent]):
    list_display = (
        "stripe_event_id",
        "event_type",
        "status",
        "source",
        "object_id",
        "account",
        "attempts_count",
        "duplicate_deliveries",
        "stripe_created_at",
        "received_at",
        "finished_at",
    )
    list_filter = ("status", "source", "livemode")
    search_fields = ("=stripe_event_id", "=object_id", "=account", "event_type")
    date_hierarchy = "received_at"
    ordering = ("-received_at",)
    readonly_fields = [field.name for field in WebhookEvent._meta.fields]
    inlines = [WebhookAttemptInline]
    actions = ["replay_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: WebhookEvent | None = None) -> bool:
        return False

    @admin.action(description="Replay selected dead-lettered or ignored events")
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        selected = list(queryset.values_list("pk", flat=True))
        replayed = events_replay(event_pks=selected)
        skipped = len(selected) - replayed
        self.message_user(
            request,
            f"Replayed {replayed} event(s); skipped {skipped} not dead-lettered or ignored.",
            messages.SUCCESS if replayed else messages.WARNING,
        )


@admin.register(WebhookObjectCursor)
class WebhookObjectCursorAdmin(admin.ModelAdmin[WebhookObjectCursor]):
    list_display = ("object_id", "applied_event_id", "applied_created_at", "updated_at")
    search_fields = ("=object_id",)
    readonly_fields = [field.name for field in WebhookObjectCursor._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
