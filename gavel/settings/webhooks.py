"""Stripe webhooks: intake limits, processing retries, the sweeper and legacy forwarding.

The endpoint signing secrets for snapshot events live in ``gavel.settings.stripe``
(STRIPE_WEBHOOK_SECRETS, STRIPE_CONNECT_WEBHOOK_SECRETS); the secrets of the v2 event
destination (thin events) live here.
"""

from __future__ import annotations

from gavel.settings.env import env_int, env_list, env_str

# Signing secrets of the v2 event destination that posts thin events to /webhooks/stripe/thin/.
# More than one while a secret is being rolled.
STRIPE_THIN_WEBHOOK_SECRETS = env_list("STRIPE_THIN_WEBHOOK_SECRETS")
# Bodies past this size are answered 413 without being read further. Stripe's largest
# snapshot events (account.updated with every requirement) stay well below 256 KiB.
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", default=512 * 1024)
# Stripe's own tolerance between the signature timestamp and our clock.
WEBHOOK_SIGNATURE_TOLERANCE_SECONDS = env_int("WEBHOOK_SIGNATURE_TOLERANCE_SECONDS", default=300)
# Processing attempts before an event is dead-lettered. A worker that dies with one event in
# hand costs that event an attempt; one that dies mid-batch costs none (services/drain.py).
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", default=8)
# Backoff before attempt n+1: min(max, base * 2**(n-1)), with equal jitter (half fixed, half
# random). With the defaults: about 30 s, 1 min, 2 min, ... capped at one hour.
WEBHOOK_RETRY_BASE_SECONDS = env_int("WEBHOOK_RETRY_BASE_SECONDS", default=30)
WEBHOOK_RETRY_MAX_SECONDS = env_int("WEBHOOK_RETRY_MAX_SECONDS", default=3600)
# Intake stores each event due at once and asks for a drain: one processing task that claims
# due events (SKIP LOCKED) in batches and processes each batch in one transaction, which holds
# the events' row locks while it works: that lock, released by PostgreSQL the moment the
# worker's connection dies, is what keeps other drains off a batch. The claim's lease only
# covers the instant between the claim's commit and the batch's lock (milliseconds), so a
# batch whose worker died is due again this many seconds after its claim.
WEBHOOK_CLAIM_SECONDS = env_int("WEBHOOK_CLAIM_SECONDS", default=10)
# Events per claim and transaction: bigger amortises the claim, the locks and the commit over
# more events, and holds the objects' cursor locks longer (benchmarks/webhooks_processing.py).
WEBHOOK_DRAIN_BATCH_SIZE = env_int("WEBHOOK_DRAIN_BATCH_SIZE", default=100)
# A drain sizes each claim by the last batch's pace so a batch takes about this long (at most
# WEBHOOK_DRAIN_BATCH_SIZE events): slow handlers get small batches, holding locks briefly.
WEBHOOK_DRAIN_BATCH_TARGET_MS = env_int("WEBHOOK_DRAIN_BATCH_TARGET_MS", default=500)
WEBHOOK_DRAIN_TIME_BUDGET_SECONDS = env_int("WEBHOOK_DRAIN_TIME_BUDGET_SECONDS", default=20)
# While a requested drain has not started, intake asks for no other (a Redis key with this
# time to live), so the outbox is written a few times a second, not once per event.
WEBHOOK_DRAIN_SIGNAL_TTL_SECONDS = env_int("WEBHOOK_DRAIN_SIGNAL_TTL_SECONDS", default=2)
# For this long after a process saw a drain requested, it does not ask Redis again; every drain
# makes a last claim at least twice this long after it starts (services/drain.py).
WEBHOOK_DRAIN_SIGNAL_REUSE_MS = env_int("WEBHOOK_DRAIN_SIGNAL_REUSE_MS", default=50)
# The sweeper (beat, every WEBHOOK_SWEEP_INTERVAL_SECONDS) requests a drain when an event has
# been due this long without being claimed: a lost drain request, a retry coming due, a lease
# run out after a worker died.
WEBHOOK_SWEEP_AFTER_SECONDS = env_int("WEBHOOK_SWEEP_AFTER_SECONDS", default=10)
WEBHOOK_SWEEP_INTERVAL_SECONDS = env_int("WEBHOOK_SWEEP_INTERVAL_SECONDS", default=15)
# Backfill starts this long before the newest stored event, so a gap at the edge is covered.
WEBHOOK_BACKFILL_OVERLAP_SECONDS = env_int("WEBHOOK_BACKFILL_OVERLAP_SECONDS", default=3600)

# Forwarding to the legacy Rails portal during the migration. Empty URL: nothing is forwarded.
LEGACY_WEBHOOK_URL = env_str("LEGACY_WEBHOOK_URL", "")
LEGACY_WEBHOOK_SECRET = env_str("LEGACY_WEBHOOK_SECRET", "")
LEGACY_WEBHOOK_TIMEOUT_SECONDS = env_int("LEGACY_WEBHOOK_TIMEOUT_SECONDS", default=10)
# An event is the legacy portal's when its connected account is listed here ...
LEGACY_FORWARD_ACCOUNTS = env_list("LEGACY_FORWARD_ACCOUNTS")
# ... or when its object's metadata holds one of these key=value pairs (e.g. "owner=legacy").
LEGACY_FORWARD_METADATA = env_list("LEGACY_FORWARD_METADATA")

# Group commit in the intake process (gavel/webhooks/intake_writer.py): writers, each with its
# own connection, store the deliveries that arrived together in one INSERT and one commit; while
# one batch waits for its commit, another writer stores the next. A batch holds at most this
# many rows, and a writer waits at most this long for more (0: it takes what is waiting).
WEBHOOK_INTAKE_WRITER_CONNECTIONS = env_int("WEBHOOK_INTAKE_WRITER_CONNECTIONS", default=4)
WEBHOOK_INTAKE_BATCH_MAX_ROWS = env_int("WEBHOOK_INTAKE_BATCH_MAX_ROWS", default=64)
WEBHOOK_INTAKE_BATCH_MAX_WAIT_MS = env_int("WEBHOOK_INTAKE_BATCH_MAX_WAIT_MS", default=0)
# The writer's statement timeout: a batch still running then is rolled back and its deliveries
# are answered 503 (Stripe delivers them again). A delivery waits at most 5 s more than this
# for its batch (a writer that cannot connect), then is answered 503 too.
WEBHOOK_INTAKE_WRITE_TIMEOUT_SECONDS = env_int("WEBHOOK_INTAKE_WRITE_TIMEOUT_SECONDS", default=10)
