"""Infrastructure tables: API idempotency keys and the transactional outbox."""

from __future__ import annotations

from django.db import models


class IdempotencyKey(models.Model):
    """One ``Idempotency-Key`` seen on an unsafe API request, scoped to its caller.

    The row is inserted before the view runs (the unique constraint makes a concurrent
    duplicate wait or fail), and completed with the response that is replayed to retries.
    """

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight"
        COMPLETED = "completed"

    scope = models.CharField(max_length=64, help_text="user:<id>, or anonymous")
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64, help_text="sha256 of method, path, body")
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_FLIGHT)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_unique_scope")
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}"


class OutboxMessage(models.Model):
    """A task to run, written in the same transaction as the change that needs it.

    A relay publishes it to the broker after commit; a periodic sweeper publishes any row that
    is still unpublished later (the process died between commit and publish, or the broker was
    down). Publishing may happen more than once; every task is idempotent.
    """

    task_name = models.CharField(max_length=200)
    kwargs = models.JSONField(default=dict)
    queue = models.CharField(max_length=64, default="default")
    request_id = models.CharField(max_length=64, blank=True, default="")
    eta = models.DateTimeField(
        null=True, blank=True, help_text="run no earlier than this (an ETA task), if set"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    published_at = models.DateTimeField(null=True, blank=True, db_index=True)
    publish_attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"],
                name="outbox_unpublished",
                condition=models.Q(published_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.task_name}#{self.pk}"
