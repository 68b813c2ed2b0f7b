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
# Processing attempts before an event is dead-lettered (a worker lost mid-attempt counts).
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", default=8)
# Backoff before attempt n+1: min(max, base * 2**(n-1)), with equal jitter (half fixed, half
# random). With the defaults: about 30 s, 1 min, 2 min, ... capped at one hour.
WEBHOOK_RETRY_BASE_SECONDS = env_int("WEBHOOK_RETRY_BASE_SECONDS", default=30)
WEBHOOK_RETRY_MAX_SECONDS = env_int("WEBHOOK_RETRY_MAX_SECONDS", default=3600)
# Intake stores each event due at once and asks for a drain: one processing task that claims
# due events (SKIP LOCKED) in batches and processes them. A claim is a lease: an event whose
# worker died is due again when it runs out. It must exceed a batch's processing time.
WEBHOOK_CLAIM_SECONDS = env_int("WEBHOOK_CLAIM_SECONDS", default=120)
WEBHOOK_DRAIN_BATCH_SIZE = env_int("WEBHOOK_DRAIN_BATCH_SIZE", default=20)
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
