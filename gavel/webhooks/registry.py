"""The registry from Stripe event type to handler.

Domain apps register their handlers in their own ``webhook_handlers`` module, imported from
their ``AppConfig.ready``::

    from gavel.webhooks.registry import IncomingEvent, webhook_handler

    @webhook_handler("account.updated", "account.application.deauthorized")
    def account_event_apply(event: IncomingEvent) -> None:
        ...

A handler must be idempotent (it may run more than once for one event) and must never move a
state backwards when an older event arrives late. It raises to ask for a retry.

Every event about one Stripe object is processed under a row lock on that object, in one
transaction with the handler's own writes. What happens to an event older than one already
applied to the same object depends on the type's ``Ordering`` (docs/webhooks.md lists the
choice for each family); ``webhook_handler(..., ordering=...)`` overrides it:

* ``Ordering.LATEST_WINS``: the handler sees only events newer, by Stripe's (created, id), than
  the last one applied to the object; an older one is recorded as superseded and not applied.
  The handler derives state from the snapshot in ``data_object``, never from the type alone.
* ``Ordering.REFETCH``: the handler sees every event and re-reads the object's current state
  through the gateway; ``event.superseded`` tells it a newer event was already applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """A stored Stripe event as handlers see it."""

    id: str
    type: str
    created: int
    livemode: bool
    data_object: dict[str, Any]
    account: str | None = None
    previous_attributes: dict[str, Any] | None = None
    api_version: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    # A newer event about the same object was already applied (REFETCH types only see this).
    superseded: bool = False
    # A v2 thin event: ``data_object`` was fetched from Stripe when it was processed.
    thin: bool = False

    @property
    def object_id(self) -> str | None:
        value = self.data_object.get("id")
        return value if isinstance(value, str) else None


Handler = Callable[[IncomingEvent], None]


class Ordering(StrEnum):
    LATEST_WINS = "latest_wins"
    REFETCH = "refetch"


# The documented choice per event family (docs/webhooks.md); the longest matching prefix wins.
# Connect onboarding state is re-read (requirements change on Stripe's side between events);
# money objects carry their whole state in each snapshot, so the newest snapshot wins.
ORDERING_BY_PREFIX: dict[str, Ordering] = {
    "account.": Ordering.REFETCH,
    "capability.": Ordering.REFETCH,
    "person.": Ordering.REFETCH,
}
ORDERING_DEFAULT = Ordering.LATEST_WINS

_handlers: dict[str, Handler] = {}
_orderings: dict[str, Ordering] = {}


class HandlerAlreadyRegistered(Exception):
    pass


def webhook_handler(
    *event_types: str, ordering: Ordering | None = None
) -> Callable[[Handler], Handler]:
    """Register the decorated function for each of ``event_types`` (one handler per type).

    ``ordering`` overrides the family's documented default (``ordering_for``).
    """

    def register(function: Handler) -> Handler:
        for event_type in event_types:
            existing = _handlers.get(event_type)
            if existing is not None and existing is not function:
                raise HandlerAlreadyRegistered(event_type)
            _handlers[event_type] = function
            if ordering is not None:
                _orderings[event_type] = ordering
        return function

    return register


def handler_unregister(*event_types: str) -> None:
    """Forget the handlers of ``event_types`` (tests that register their own)."""
    for event_type in event_types:
        _handlers.pop(event_type, None)
        _orderings.pop(event_type, None)


def handler_for(event_type: str) -> Handler | None:
    return _handlers.get(event_type)


def ordering_for(event_type: str) -> Ordering:
    explicit = _orderings.get(event_type)
    if explicit is not None:
        return explicit
    matches = [prefix for prefix in ORDERING_BY_PREFIX if event_type.startswith(prefix)]
    if matches:
        return ORDERING_BY_PREFIX[max(matches, key=len)]
    return ORDERING_DEFAULT


def registered_types() -> list[str]:
    return sorted(_handlers)
