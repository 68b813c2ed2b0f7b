"""Prometheus metrics of the Connect app."""

from __future__ import annotations

from prometheus_client import Counter

ACCOUNTS_CREATED = Counter(
    "gavel_connect_accounts_created_total", "Connected accounts created on Stripe", ["preset"]
)
STATUS_CHANGES = Counter(
    "gavel_connect_status_changes_total",
    "Connected account status changes",
    ["status_before", "status_after"],
)
STALE_EVENTS = Counter(
    "gavel_connect_stale_events_total", "account.* events older than the state already applied"
)
LINKS_ISSUED = Counter(
    "gavel_connect_links_issued_total", "Account links, sessions and login links", ["kind"]
)
