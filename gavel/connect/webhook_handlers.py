"""Stripe events about sellers' connected accounts.

Every type here re-reads the account through the gateway (the registry's REFETCH ordering for
``account.``, ``capability.`` and ``person.``; set explicitly for the external account types),
so a late or repeated event is harmless: it is skipped when older than the state applied, and
otherwise mirrors Stripe's current state.
"""

from __future__ import annotations

from gavel.connect.services import connected_account_deauthorize, connected_account_event_apply
from gavel.webhooks.registry import IncomingEvent, Ordering, webhook_handler

ACCOUNT_STATE_EVENTS = (
    "account.updated",
    "capability.updated",
    "account.external_account.created",
    "account.external_account.updated",
    "account.external_account.deleted",
    "person.created",
    "person.updated",
    "person.deleted",
)


@webhook_handler(*ACCOUNT_STATE_EVENTS, ordering=Ordering.REFETCH)
def account_state_changed(event: IncomingEvent) -> None:
    connected_account_event_apply(event=event)


@webhook_handler("account.application.deauthorized", ordering=Ordering.REFETCH)
def account_deauthorized(event: IncomingEvent) -> None:
    connected_account_deauthorize(event=event)
