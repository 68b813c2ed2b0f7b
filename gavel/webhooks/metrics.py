"""Prometheus metrics of the webhook pipeline (alert rules: ops/alerts/webhooks.yml)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECEIVED = Counter(
    "gavel_webhooks_received_total", "Events stored for the first time", ["endpoint"]
)
DUPLICATES = Counter(
    "gavel_webhooks_duplicates_total", "Deliveries of an event already stored", ["endpoint"]
)
REJECTIONS = Counter(
    "gavel_webhooks_rejections_total",
    "Deliveries refused before anything was stored",
    ["endpoint", "reason"],
)
PROCESSED = Counter(
    "gavel_webhooks_processed_total",
    "Finished processing attempts by event type and outcome",
    ["type", "outcome"],
)
PROCESSING_LAG = Histogram(
    "gavel_webhooks_processing_lag_seconds",
    "From storage at intake to the end of processing",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
RETRIES = Counter("gavel_webhooks_retries_total", "Attempts that failed and will retry", ["type"])
DEAD_LETTERS = Counter(
    "gavel_webhooks_dead_letters_total", "Events dead-lettered after their retries", ["type"]
)
SWEEP_DRAINS = Counter(
    "gavel_webhooks_sweep_drains_total", "Drains the sweeper requested for overdue events"
)
REPLAYS = Counter("gavel_webhooks_replays_total", "Events replayed by an operator")
FORWARD_FAILURES = Counter(
    "gavel_webhooks_forward_failures_total", "Failed forwards to the legacy portal"
)
UNFINISHED = Gauge(
    "gavel_webhooks_unfinished_events",
    "Events stored and not finished, at the last sweep",
    multiprocess_mode="max",
)
OLDEST_UNFINISHED_AGE = Gauge(
    "gavel_webhooks_oldest_unfinished_age_seconds",
    "Age of the oldest unfinished event, at the last sweep",
    multiprocess_mode="max",
)
DEAD_EVENTS = Gauge(
    "gavel_webhooks_dead_events",
    "Events in the dead-letter state, at the last sweep",
    multiprocess_mode="max",
)
