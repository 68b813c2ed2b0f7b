"""Webhook pipeline services: intake, processing, sweeping, replay, backfill, forwarding."""

from gavel.webhooks.services.backfill import BackfillResult, events_backfill
from gavel.webhooks.services.drain import drain_request, events_claim, events_drain
from gavel.webhooks.services.ingest import IngestResult, event_ingest
from gavel.webhooks.services.processing import event_process, retry_delay_seconds
from gavel.webhooks.services.replay import event_replay, events_replay
from gavel.webhooks.services.sweep import SweepResult, events_sweep

__all__ = [
    "BackfillResult",
    "IngestResult",
    "SweepResult",
    "drain_request",
    "event_ingest",
    "event_process",
    "event_replay",
    "events_backfill",
    "events_claim",
    "events_drain",
    "events_replay",
    "events_sweep",
    "retry_delay_seconds",
]
