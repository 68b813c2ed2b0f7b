"""Stripe configuration. The API version is pinned here and nowhere else."""

from __future__ import annotations

from gavel.settings.env import env_int, env_list, env_str

# The one place the Stripe API version is pinned; the gateway sends it on every request.
STRIPE_API_VERSION = "2025-10-29.clover"
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY", "sk_test_gavel_local")
# Empty means real Stripe. "inprocess" means the stripe_sandbox in this process (tests, demo).
STRIPE_API_BASE = env_str("STRIPE_API_BASE", "")
STRIPE_WEBHOOK_SECRETS = env_list("STRIPE_WEBHOOK_SECRETS")
STRIPE_CONNECT_WEBHOOK_SECRETS = env_list("STRIPE_CONNECT_WEBHOOK_SECRETS")
# The SDK retries connection errors and 5xx with the same idempotency key; 429s are retried
# by our task layer with backoff instead.
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", default=2)
STRIPE_TIMEOUT_SECONDS = env_int("STRIPE_TIMEOUT_SECONDS", default=30)
