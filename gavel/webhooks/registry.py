"""The registry from Stripe event type to handler.

Domain apps register their handlers in their own ``webhook_handlers`` module, imported from
their ``AppConfig.ready``::

    from gavel.webhooks.registry import IncomingEvent, webhook_handler

    @webhook_handler("account.updated", "account.application.deauthorized")
    def account_event_apply(event: IncomingEvent) -> None:
        ...

A handler must be idempotent (it may run more than once for one event) and must never move a
state backwards when an older event arrives late. It raises to ask for a retry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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

    @property
    def object_id(self) -> str | None:
        value = self.data_object.get("id")
        return value if isinstance(value, str) else None


Handler = Callable[[IncomingEvent], None]

_handlers: dict[str, Handler] = {}


class HandlerAlreadyRegistered(Exception):
    pass


def webhook_handler(*event_types: str) -> Callable[[Handler], Handler]:
    """Register the decorated function for each of ``event_types`` (one handler per type)."""

    def register(function: Handler) -> Handler:
        for event_type in event_types:
            existing = _handlers.get(event_type)
            if existing is not None and existing is not function:
                raise HandlerAlreadyRegistered(event_type)
            _handlers[event_type] = function
        return function

    return register


def handler_for(event_type: str) -> Handler | None:
    return _handlers.get(event_type)


def registered_types() -> list[str]:
    return sorted(_handlers)
