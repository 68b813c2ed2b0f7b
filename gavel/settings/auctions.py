"""Auctions: bid increments, soft close, closing, unpaid items, live updates."""

from __future__ import annotations

from gavel.settings.env import env_int, env_str

# eBay's US bid-increment table in minor units: (price from, increment). A price at or above
# "price from" (and below the next row's) takes that row's increment. Auctions may carry their
# own table; this is the default.
AUCTIONS_DEFAULT_INCREMENT_TABLE: list[tuple[int, int]] = [
    (0, 5),
    (100, 25),
    (500, 50),
    (2_500, 100),
    (10_000, 250),
    (25_000, 500),
    (50_000, 1_000),
    (100_000, 2_500),
    (250_000, 5_000),
    (500_000, 10_000),
]
# Soft close: a bid in the last N seconds extends the end (0 turns it off). Style
# "extend_by" adds N seconds to the end; "extend_to" moves the end to N seconds after the bid.
AUCTIONS_SOFT_CLOSE_SECONDS = env_int("AUCTIONS_SOFT_CLOSE_SECONDS", default=120)
AUCTIONS_SOFT_CLOSE_STYLE = env_str("AUCTIONS_SOFT_CLOSE_STYLE", "extend_to")
# The beat scanner closes overdue auctions and schedules an exact-time close task for those
# ending soon. It only schedules ETA tasks for auctions ending within the broker's visibility
# timeout less this margin, because Redis redelivers longer-delayed messages again and again.
AUCTIONS_CLOSE_SCAN_SECONDS = env_int("AUCTIONS_CLOSE_SCAN_SECONDS", default=10)
AUCTIONS_CLOSE_ETA_MARGIN_SECONDS = env_int("AUCTIONS_CLOSE_ETA_MARGIN_SECONDS", default=60)
AUCTIONS_CLOSE_BATCH_SIZE = env_int("AUCTIONS_CLOSE_BATCH_SIZE", default=200)
# The Celery queue of the exact-time close tasks.
AUCTIONS_TASK_QUEUE = env_str("AUCTIONS_TASK_QUEUE", "auctions")
# Dotted task name that receives {"sale_id": ...} on the "payments" queue when a sale is made.
# Empty (the default until gavel.payments exists) records the sale without handing it off.
AUCTIONS_HANDOFF_TASK = env_str("AUCTIONS_HANDOFF_TASK", "")
# How long a winner whose payment failed has to fix it (3-D Secure included) before the sale
# is cancelled and a second-chance offer goes out; and how long that offer stays open.
AUCTIONS_UNPAID_WINDOW_SECONDS = env_int("AUCTIONS_UNPAID_WINDOW_SECONDS", default=48 * 3600)
AUCTIONS_SECOND_CHANCE_WINDOW_SECONDS = env_int(
    "AUCTIONS_SECOND_CHANCE_WINDOW_SECONDS", default=48 * 3600
)
AUCTIONS_SALES_SCAN_SECONDS = env_int("AUCTIONS_SALES_SCAN_SECONDS", default=300)
# Buyers' imported Stripe customers still unsynced (their batch's refresh task failed) are
# read from Stripe by the customers janitor (beat), this many a run.
AUCTIONS_CUSTOMERS_JANITOR_SECONDS = env_int("AUCTIONS_CUSTOMERS_JANITOR_SECONDS", default=300)
AUCTIONS_CUSTOMERS_JANITOR_BATCH = env_int("AUCTIONS_CUSTOMERS_JANITOR_BATCH", default=500)
# Above this maximum (minor units) an auction with a hold policy requires a hold or deposit.
AUCTIONS_HOLD_THRESHOLD_MINOR = env_int("AUCTIONS_HOLD_THRESHOLD_MINOR", default=100_000)
# Live updates: Redis pub/sub channel prefix and how long one SSE connection stays open
# (clients reconnect with Last-Event-ID; a bounded stream frees the worker).
AUCTIONS_STREAM_CHANNEL_PREFIX = env_str("AUCTIONS_STREAM_CHANNEL_PREFIX", "gavel:auction:")
AUCTIONS_STREAM_MAX_SECONDS = env_int("AUCTIONS_STREAM_MAX_SECONDS", default=30)
AUCTIONS_STREAM_KEEPALIVE_SECONDS = env_int("AUCTIONS_STREAM_KEEPALIVE_SECONDS", default=10)
