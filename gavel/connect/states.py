"""The connected account's status: derived from Stripe's state, moved by one function.

A status is never set by hand: ``status_derive`` reads it off the mirrored Stripe state and
``status_move_allowed`` says whether the record may go there from where it is.
"""

from __future__ import annotations

from django.db import models


class AccountStatus(models.TextChoices):
    # The row exists; Stripe's answer to the create call is not known yet (not sent, or sent
    # and lost). The next "become a seller" replays the same idempotency key.
    CREATING = "creating"
    # Imported (legacy portal, v1 or v2): Gavel knows the account id, not yet its state.
    UNSYNCED = "unsynced"
    ONBOARDING = "onboarding"  # the account exists; the seller has not submitted details yet
    ENABLED = "enabled"  # charges and every required capability are active
    RESTRICTED = "restricted"  # details submitted, but Stripe holds a required capability back
    REJECTED = "rejected"  # Stripe rejected the account (fraud, terms, ...)
    DEAUTHORIZED = "deauthorized"  # the seller disconnected Gavel's platform: terminal


TRANSITIONS: dict[str, frozenset[str]] = {
    AccountStatus.CREATING: frozenset(
        {
            AccountStatus.ONBOARDING,
            AccountStatus.ENABLED,
            AccountStatus.RESTRICTED,
            AccountStatus.REJECTED,
            AccountStatus.DEAUTHORIZED,
        }
    ),
    AccountStatus.UNSYNCED: frozenset(
        {
            AccountStatus.ONBOARDING,
            AccountStatus.ENABLED,
            AccountStatus.RESTRICTED,
            AccountStatus.REJECTED,
            AccountStatus.DEAUTHORIZED,
        }
    ),
    AccountStatus.ONBOARDING: frozenset(
        {
            AccountStatus.ENABLED,
            AccountStatus.RESTRICTED,
            AccountStatus.REJECTED,
            AccountStatus.DEAUTHORIZED,
        }
    ),
    AccountStatus.ENABLED: frozenset(
        {
            AccountStatus.ONBOARDING,
            AccountStatus.RESTRICTED,
            AccountStatus.REJECTED,
            AccountStatus.DEAUTHORIZED,
        }
    ),
    AccountStatus.RESTRICTED: frozenset(
        {
            AccountStatus.ONBOARDING,
            AccountStatus.ENABLED,
            AccountStatus.REJECTED,
            AccountStatus.DEAUTHORIZED,
        }
    ),
    # Stripe can reverse a rejection after review.
    AccountStatus.REJECTED: frozenset(
        {
            AccountStatus.ONBOARDING,
            AccountStatus.ENABLED,
            AccountStatus.RESTRICTED,
            AccountStatus.DEAUTHORIZED,
        }
    ),
    AccountStatus.DEAUTHORIZED: frozenset(),
}

TERMINAL = frozenset(status for status, targets in TRANSITIONS.items() if not targets)


def status_move_allowed(*, current: str, target: str) -> bool:
    """Whether a record in ``current`` may move to ``target`` (staying put is always fine)."""
    return current == target or target in TRANSITIONS[current]


def status_derive(
    *,
    details_submitted: bool,
    charges_enabled: bool,
    capabilities: dict[str, str],
    required_capabilities: list[str],
    disabled_reason: str,
) -> AccountStatus:
    """The status Stripe's state means for a seller."""
    if disabled_reason.startswith("rejected."):
        return AccountStatus.REJECTED
    if charges_enabled and all(
        capabilities.get(name) == "active" for name in required_capabilities
    ):
        return AccountStatus.ENABLED
    if not details_submitted:
        return AccountStatus.ONBOARDING
    return AccountStatus.RESTRICTED
