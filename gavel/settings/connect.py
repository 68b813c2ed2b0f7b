"""Sellers on Stripe Connect: the account preset, onboarding URLs and the payouts policy."""

from __future__ import annotations

from gavel.settings.env import env_int, env_list, env_str

# Which controller properties "become a seller" creates accounts with (docs/adr/0004):
# "express" (Stripe collects requirements, Express Dashboard, the platform pays fees and bears
# losses; the default), "standard" (full Dashboard, the seller pays Stripe's fees, Stripe bears
# losses) or "custom" (no Stripe Dashboard, the platform collects requirements).
CONNECT_ACCOUNT_PRESET = env_str("CONNECT_ACCOUNT_PRESET", "express")
# Country of new connected accounts (ISO 3166-1 alpha-2); Stripe cannot change it later.
CONNECT_ACCOUNT_COUNTRY = env_str("CONNECT_ACCOUNT_COUNTRY", "US")
# Capabilities a seller needs: card_payments to be charged for, transfers to be paid by
# separate transfers. Listing is allowed only while every one of them is "active".
CONNECT_REQUIRED_CAPABILITIES = env_list("CONNECT_REQUIRED_CAPABILITIES", "card_payments,transfers")
# Where Stripe-hosted onboarding sends the seller back. return_url: onboarding left (finished
# or not: Gavel re-reads the account). refresh_url: the link expired or was used; the page
# there asks Gavel for a new link. Apps may pass their own URLs if they start with one of the
# allowed prefixes (universal links of the React Native app, the Next.js origin).
CONNECT_ONBOARDING_RETURN_URL = env_str(
    "CONNECT_ONBOARDING_RETURN_URL", "https://app.gavel.example/seller/onboarding/return"
)
CONNECT_ONBOARDING_REFRESH_URL = env_str(
    "CONNECT_ONBOARDING_REFRESH_URL", "https://app.gavel.example/seller/onboarding/refresh"
)
CONNECT_REDIRECT_URL_PREFIXES = env_list(
    "CONNECT_REDIRECT_URL_PREFIXES", "https://app.gavel.example/,gavel://"
)
# What a seller whose bank payouts Stripe has disabled may do: "keep_selling" (sales go on,
# the money waits in their Stripe balance until payouts are enabled again) or "stop_selling"
# (no new listings until Stripe re-enables payouts). Either way the seller is told why.
CONNECT_PAYOUTS_DISABLED_POLICY = env_str("CONNECT_PAYOUTS_DISABLED_POLICY", "keep_selling")
# Dotted task name that receives {"connected_account_id", "user_id"} on the "payments" queue
# when a seller's payouts become allowed again (transfers active), so held payouts can go.
# Empty (until gavel.payments exists): nothing is enqueued; payments re-checks on its own.
CONNECT_PAYOUTS_RESUMED_TASK = env_str("CONNECT_PAYOUTS_RESUMED_TASK", "")
# The janitor (beat, every CONNECT_JANITOR_INTERVAL_SECONDS) settles accounts whose create
# answer was lost, replaying the same idempotency key while Stripe still remembers it (24 h),
# and re-reads accounts not synced for CONNECT_RESYNC_AFTER_HOURS (a missed webhook's net).
CONNECT_JANITOR_INTERVAL_SECONDS = env_int("CONNECT_JANITOR_INTERVAL_SECONDS", default=300)
CONNECT_SETTLE_AFTER_SECONDS = env_int("CONNECT_SETTLE_AFTER_SECONDS", default=60)
CONNECT_RESYNC_AFTER_HOURS = env_int("CONNECT_RESYNC_AFTER_HOURS", default=24)
CONNECT_JANITOR_BATCH_SIZE = env_int("CONNECT_JANITOR_BATCH_SIZE", default=100)
