"""Stored Stripe events, every processing attempt, and the per-object ordering cursor.

A ``WebhookEvent`` row is written before Stripe gets its 200 and is its own outbox: while its
status is unfinished, ``due_at`` says when the sweeper enqueues it (again).
"""

from __future__ import annotations

from django.db import models


class WebhookEvent(models.Model):
    """One Stripe event, stored raw, exactly once (unique on Stripe's event id)."""

    class Source(models.TextChoices):
        PLATFORM = "platform"
        CONNECT = "connect"
        THIN = "thin"

    class Status(models.TextChoices):
        PENDING = "pending"  # stored, waiting for its first attempt
        RETRYING = "retrying"  # an attempt failed; due_at is the next one
        PROCESSED = "processed"  # a handler applied it
        SUPERSEDED = "superseded"  # older than an event already applied to the same object
        FORWARDED = "forwarded"  # delivered to the legacy portal, which owns the object
        IGNORED = "ignored"  # no handler for its type, or a test-mode event on a live endpoint
        DEAD = "dead"  # retries exhausted; waits for an operator's replay

    UNFINISHED = (Status.PENDING, Status.RETRYING)
    REPLAYABLE = (Status.DEAD, Status.IGNORED)

    stripe_event_id = models.CharField(max_length=255, unique=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    event_type = models.CharField(max_length=200, db_index=True)
    api_version = models.CharField(max_length=64, blank=True, default="")
    livemode = models.BooleanField()
    account = models.CharField(
        max_length=255, blank=True, default="", db_index=True, help_text="connected account"
    )
    object_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    object_type = models.CharField(max_length=100, blank=True, default="")
    stripe_created_at = models.DateTimeField(help_text="when Stripe created the event")
    payload = models.TextField(help_text="the body exactly as received")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts_count = models.PositiveIntegerField(default=0)
    duplicate_deliveries = models.PositiveIntegerField(default=0)
    due_at = models.DateTimeField(
        null=True, blank=True, help_text="unfinished only: when the sweeper enqueues it again"
    )
    last_error = models.TextField(blank=True, default="")
    received_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["due_at"],
                name="webhook_event_due",
                condition=models.Q(status__in=["pending", "retrying"]),
            ),
            models.Index(fields=["status", "received_at"], name="webhook_event_status"),
            models.Index(
                fields=["source", "account", "stripe_created_at"], name="webhook_event_seen"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stripe_event_id} {self.event_type}"


class WebhookAttempt(models.Model):
    """One processing attempt of one event. Append-only: a row is finished once, never edited
    afterwards; an attempt whose worker died keeps no end until the next drain to claim its
    event (or the sweeper) closes it: ``lost`` if it ran alone (it is the one to blame, and it
    was counted), ``abandoned`` if it ran in a batch (not counted; its event runs alone next)."""

    class Action(models.TextChoices):
        HANDLE = "handle"
        FORWARD = "forward"

    class Outcome(models.TextChoices):
        RUNNING = "running"
        PROCESSED = "processed"
        SUPERSEDED = "superseded"
        FORWARDED = "forwarded"
        IGNORED = "ignored"
        FAILED = "failed"
        ALREADY_FINISHED = "already_finished"  # a duplicate task found the event done
        LOST = "lost"  # the worker died mid-attempt, this event alone in hand: counted
        ABANDONED = "abandoned"  # the worker died mid-batch: not counted, retried alone

    # Indexed by (event, id) below: the claim reads each due event's last attempt, which the
    # foreign key's own index would leave to a backward scan of every attempt.
    event = models.ForeignKey(
        WebhookEvent, on_delete=models.CASCADE, related_name="attempts", db_index=False
    )
    number = models.PositiveIntegerField()
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.HANDLE)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RUNNING)
    error = models.TextField(blank=True, default="")
    worker = models.CharField(max_length=255, blank=True, default="")
    task_id = models.CharField(max_length=255, blank=True, default="")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    isolated = models.BooleanField(
        default=False,
        db_default=False,
        help_text="ran alone, counted when it started; else in a batch, counted when it ended",
    )

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["event", "id"], name="webhook_attempt_event"),
            models.Index(
                fields=["started_at"],
                name="webhook_attempt_running",
                condition=models.Q(finished_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id}#{self.number} {self.outcome}"


class WebhookObjectCursor(models.Model):
    """The newest event applied to one Stripe object: the row locked to serialise that
    object's events, and the mark an older event is compared with."""

    object_id = models.CharField(max_length=255, unique=True)
    applied_created_at = models.DateTimeField()
    applied_rank = models.SmallIntegerField(default=0, help_text="lifecycle stage, for ties")
    applied_event_id = models.CharField(max_length=255)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.object_id} @ {self.applied_event_id}"
