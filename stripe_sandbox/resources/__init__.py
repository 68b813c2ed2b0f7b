"""Resource handlers. Importing this package registers every route."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stripe_sandbox.core import Sandbox

RenderHook = Callable[["Sandbox", dict[str, Any], dict[str, Any]], None]
TaskHandler = Callable[..., None]

render_hooks: dict[str, RenderHook] = {}
task_handlers: dict[str, TaskHandler] = {}


def render_hook(kind: str) -> Callable[[RenderHook], RenderHook]:
    def deco(fn: RenderHook) -> RenderHook:
        render_hooks[kind] = fn
        return fn

    return deco


def task(kind: str) -> Callable[[TaskHandler], TaskHandler]:
    def deco(fn: TaskHandler) -> TaskHandler:
        task_handlers[kind] = fn
        return fn

    return deco


from stripe_sandbox.resources import (  # noqa: E402
    accounts,
    customers,
    events,
    intents,
    money,
    search,
    thin_events,
)

__all__ = [
    "accounts",
    "customers",
    "events",
    "intents",
    "money",
    "render_hooks",
    "search",
    "task_handlers",
    "thin_events",
]
