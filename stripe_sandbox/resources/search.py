"""Search endpoints (``/v1/<resource>/search``) with a subset of Stripe's query language.

Supported: ``field:'value'`` (exact), ``field~'value'`` (substring), ``-field:'value'``
(negation), ``metadata['key']:'value'``, numeric ``field>10`` / ``>=`` / ``<`` / ``<=`` /
``:10``, and clauses joined by ``AND`` or ``OR`` (not mixed, as in Stripe).
Results are immediately consistent (Stripe's index may lag by about a minute).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from stripe_sandbox.errors import invalid
from stripe_sandbox.router import route

if TYPE_CHECKING:
    from stripe_sandbox.core import Ctx

Obj = dict[str, Any]

_CLAUSE = re.compile(
    r"""^(?P<neg>-)?
        (?P<field>[a-z_]+(?:\['[^']+'\])?)
        (?P<op>:|~|>=|<=|>|<)
        (?P<value>'[^']*'|"[^"]*"|-?\d+|null)$""",
    re.X,
)


def _field_value(obj: Obj, field: str) -> Any:
    m = re.fullmatch(r"metadata\['([^']+)'\]", field)
    if m:
        return (obj.get("metadata") or {}).get(m.group(1))
    return obj.get(field)


def _match(obj: Obj, clause: str) -> bool:
    m = _CLAUSE.match(clause.strip())
    if not m:
        raise invalid(f"Invalid search query clause: {clause.strip()}", param="query")
    raw = m.group("value")
    value: Any
    if raw == "null":
        value = None
    elif raw[0] in "'\"":
        value = raw[1:-1]
    else:
        value = int(raw)
    actual = _field_value(obj, m.group("field"))
    op = m.group("op")
    if op == ":":
        if isinstance(value, int) and isinstance(actual, int):
            ok = actual == value
        else:
            ok = (actual is None and value is None) or (
                actual is not None and str(actual) == str(value)
            )
    elif op == "~":
        ok = actual is not None and str(value).lower() in str(actual).lower()
    else:
        if not isinstance(value, int) or not isinstance(actual, int):
            return False
        ok = {
            ">": actual > value,
            ">=": actual >= value,
            "<": actual < value,
            "<=": actual <= value,
        }[op]
    return not ok if m.group("neg") else ok


def _search(ctx: Ctx, p: Obj, kind: str, url: str) -> Obj:
    query = str(p["query"]).strip()
    if " AND " in query and " OR " in query:
        raise invalid("Mixing AND and OR in a search query is not supported.", param="query")
    if " OR " in query:
        clauses, combine = query.split(" OR "), any
    else:
        clauses, combine = query.split(" AND "), all
    items = [
        o for o in ctx.sb.objects_of(kind, ctx.account) if combine(_match(o, c) for c in clauses)
    ]
    limit = p.get("limit", 10)
    if not 1 <= limit <= 100:
        raise invalid("Invalid limit: must be between 1 and 100.", param="limit")
    start = int(p["page"]) if str(p.get("page", "")).isdigit() else 0
    page = items[start : start + limit]
    more = len(items) > start + limit
    return {
        "object": "search_result",
        "data": [ctx.sb.render(o) for o in page],
        "has_more": more,
        "next_page": str(start + limit) if more else None,
        "url": url,
    }


@route("GET", "/v1/payment_intents/search", "PaymentIntentSearchParams")
def search_payment_intents(ctx: Ctx, p: Obj) -> Obj:
    return _search(ctx, p, "payment_intent", "/v1/payment_intents/search")


@route("GET", "/v1/charges/search", "ChargeSearchParams")
def search_charges(ctx: Ctx, p: Obj) -> Obj:
    return _search(ctx, p, "charge", "/v1/charges/search")


@route("GET", "/v1/customers/search", "CustomerSearchParams")
def search_customers(ctx: Ctx, p: Obj) -> Obj:
    return _search(ctx, p, "customer", "/v1/customers/search")
