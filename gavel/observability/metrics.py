"""Prometheus metrics. Domain apps add their counters here so /metrics has one home.

Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR; /metrics then aggregates
every worker's files.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "gavel_http_requests_total",
    "HTTP requests by method, route and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "gavel_http_request_duration_seconds", "HTTP request latency", ["method", "route"]
)
TASKS = Counter("gavel_tasks_total", "Celery task outcomes", ["task", "outcome"])
TASK_DURATION = Histogram("gavel_task_duration_seconds", "Celery task run time", ["task"])
OUTBOX_PUBLISH_FAILURES = Counter(
    "gavel_outbox_publish_failures_total", "Outbox rows that could not be published"
)
