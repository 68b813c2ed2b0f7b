from django.contrib import admin

from gavel.common.models import IdempotencyKey, OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin[OutboxMessage]):
    list_display = ("id", "task_name", "queue", "created_at", "published_at", "publish_attempts")
    list_filter = ("queue", "task_name")
    search_fields = ("task_name", "request_id")
    readonly_fields = [field.name for field in OutboxMessage._meta.fields]


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin[IdempotencyKey]):
    list_display = ("scope", "key", "state", "response_status", "created_at")
    list_filter = ("state",)
    search_fields = ("scope", "key")
    readonly_fields = [field.name for field in IdempotencyKey._meta.fields]
