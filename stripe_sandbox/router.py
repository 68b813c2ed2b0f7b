"""Method + path dispatch table. Resource modules register handlers with :func:`route`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[..., Any]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Handler
    params: str | None


ROUTES: list[Route] = []


def route(method: str, template: str, params: str | None) -> Callable[[Handler], Handler]:
    """Register ``handler(ctx, params, **path_args)`` for ``method template``.

    ``params`` names the ``stripe.params`` TypedDict that defines accepted parameters
    (``None``: only ``expand``).
    """
    pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"

    def deco(fn: Handler) -> Handler:
        ROUTES.append(Route(method.upper(), template, re.compile(pattern), fn, params))
        return fn

    return deco


def resolve(method: str, path: str) -> tuple[Route, dict[str, str]] | str | None:
    """(route, path args); ``None`` if no path matches; "method" if only the method differs."""
    path_matched = False
    best: tuple[Route, dict[str, str]] | None = None
    for r in ROUTES:
        m = r.regex.match(path)
        if not m:
            continue
        path_matched = True
        if r.method != method.upper():
            continue
        # literal segments beat placeholders: /v1/payment_intents/search vs /{pi_id}
        if best is None or r.template.count("{") < best[0].template.count("{"):
            best = (r, m.groupdict())
    if best is not None:
        return best
    return "method" if path_matched else None
