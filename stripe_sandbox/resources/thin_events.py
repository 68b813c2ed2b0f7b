"""Event destinations and v2 (thin) events: ``/v2/core/event_destinations``, ``/v2/core/events``.

Every v1 event whose type Stripe also publishes as a thin event (the SDK's catalog of
``v1.*`` event notifications) gets a ``v2.core.event`` twin typed ``v1.<type>``: no snapshot,
a ``related_object`` reference (``id``, ``type``, ``url``) to fetch, ``context`` naming the
connected account, ``reason`` naming the request, ``snapshot_event`` naming the v1 event.
Destinations with ``event_payload: "thin"`` receive the notification (signed like every
webhook); ``"snapshot"`` destinations receive the v1 event like a webhook endpoint.

v2 conventions: JSON bodies, RFC 3339 timestamps with milliseconds, lists as
``{"data", "next_page_url", "previous_page_url"}`` paged with an opaque ``page`` token.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from stripe_sandbox.errors import StripeError, invalid, no_such
from stripe_sandbox.router import route

if TYPE_CHECKING:
    from stripe_sandbox.core import Ctx, Sandbox

Obj = dict[str, Any]

EVENT = "v2.core.event"
DESTINATION = "v2.core.event_destination"
PING = "v2.core.event_destination.ping"
EVENTS_FROM = ("@self", "@accounts", "@organization_members", "@organization_members/@accounts")
V2_DEFAULT_LIMIT = 20
V2_MAX_LIMIT = 100

# API paths of v1 objects whose path is not ``/v1/<object>s/<id>``.
_V1_PATHS = {
    "dispute": "/v1/disputes/{id}",
    "balance": "/v1/balance",
    "capability": "/v1/accounts/{account}/capabilities/{id}",
    "person": "/v1/accounts/{account}/persons/{id}",
    "bank_account": "/v1/accounts/{account}/external_accounts/{id}",
    "card": "/v1/accounts/{account}/external_accounts/{id}",
    "fee_refund": "/v1/application_fees/{fee}/refunds/{id}",
    "transfer_reversal": "/v1/transfers/{transfer}/reversals/{id}",
}


@cache
def thin_event_types() -> frozenset[str]:
    """Every thin event type the SDK knows (``v1.*`` twins of v1 events, ``v2.*``)."""
    from stripe.events import _event_classes

    return frozenset(_event_classes._V2_EVENT_NOTIFICATION_CLASS_LOOKUP)


def _stamp(sb: Sandbox) -> tuple[int, str]:
    """Now, and now as an RFC 3339 time whose milliseconds count the events of that second, so
    that the events of one request keep their order (the sandbox clock has whole seconds)."""
    now = sb.now()
    second, count = sb._v2_event_clock
    count = min(count + 1, 999) if second == now else 0
    sb._v2_event_clock = (now, count)
    return now, rfc3339(now, count)


@cache
def has_related_object(event_type: str) -> bool:
    """Whether Stripe's notifications of that type reference a related object (per the SDK's
    model: ``account.application.*`` and ``account.external_account.*`` do not)."""
    from stripe.events._event_classes import get_v2_event_notification_class

    notification_class = get_v2_event_notification_class(event_type)
    return "related_object" in getattr(notification_class, "__annotations__", {})


def rfc3339(ts: int, millis: int = 0) -> str:
    """``2026-11-25T08:00:00.000Z`` (v2 timestamps)."""
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def _parse_rfc3339(value: Any, param: str) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    raise invalid(f"Invalid timestamp for {param}: must be an RFC 3339 timestamp.", param=param)


def related_object_of(data_object: Obj) -> Obj:
    """``{"id", "type", "url"}`` of a v1 object (``{"type", "url"}`` for a singleton)."""
    kind = str(data_object.get("object") or "")
    obj_id = data_object.get("id")
    template = _V1_PATHS.get(kind, "/v1/" + kind.replace(".", "/") + "s/{id}")
    values = {
        "id": obj_id,
        "account": data_object.get("account"),
        "fee": data_object.get("fee"),
        "transfer": data_object.get("transfer"),
    }
    url = template.format(**{k: v or "" for k, v in values.items()})
    if not obj_id:
        return {"type": kind, "url": url}
    return {"id": obj_id, "type": kind, "url": url}


def thin_event_emit(sb: Sandbox, ctx: Ctx | None, v1_event: Obj) -> Obj | None:
    """The thin twin of a v1 event, when Stripe publishes that type as a thin event."""
    thin_type = "v1." + v1_event["type"]
    if thin_type not in thin_event_types():
        return None
    owner = v1_event.get("_owner")
    reason = None
    if ctx is not None and ctx.request_id:
        reason = {
            "type": "request",
            "request": {"id": ctx.request_id, "idempotency_key": ctx.idempotency_key},
        }
    related = related_object_of(v1_event["data"]["object"])
    return _event_new(
        sb,
        owner,
        thin_type,
        related_object=related if has_related_object(thin_type) else None,
        reason=reason,
        snapshot_event=v1_event["id"],
    )


def _event_new(
    sb: Sandbox,
    owner: str | None,
    event_type: str,
    *,
    related_object: Obj | None,
    reason: Obj | None,
    snapshot_event: str | None,
) -> Obj:
    now, created = _stamp(sb)
    event: Obj = {
        "id": sb.new_id("evt_test", 52),
        "object": EVENT,
        "changes": None,
        "context": owner,
        "created": created,
        "livemode": False,
        "reason": reason,
        "related_object": related_object,
        "snapshot_event": snapshot_event,
        "type": event_type,
        "_ts": now,
    }
    if related_object is None:
        del event["related_object"]
    sb.store(event, owner)
    for destination in _destinations_for(sb, event_type, owner, "thin"):
        sb.delivery_queue(event, destination)
    return event


def notification_of(event: Obj) -> Obj:
    """What a thin destination receives: the event without ``changes`` or ``snapshot_event``
    (fetch the event for those)."""
    out: Obj = {
        "id": event["id"],
        "object": EVENT,
        "type": event["type"],
        "livemode": event["livemode"],
        "created": event["created"],
    }
    if event.get("context"):
        out["context"] = event["context"]
    if "related_object" in event:
        out["related_object"] = event["related_object"]
    if event.get("reason"):
        out["reason"] = event["reason"]
    return out


def _destinations_for(sb: Sandbox, event_type: str, owner: str | None, payload: str) -> list[Obj]:
    scope = "@accounts" if owner is not None else "@self"
    out = [
        d
        for d in sb.objects_of(DESTINATION, None)
        if d["status"] == "enabled"
        and d["event_payload"] == payload
        and scope in (d.get("events_from") or ["@self"])
        and event_type in d["enabled_events"]
    ]
    out.sort(key=lambda d: d["_seq"])
    return out


def snapshot_destinations_for(sb: Sandbox, v1_event: Obj) -> list[Obj]:
    """Snapshot destinations subscribed to a v1 event (delivered like webhook endpoints)."""
    return _destinations_for(sb, v1_event["type"], v1_event.get("_owner"), "snapshot")


# --------------------------------------------------------------------------- destinations
def _check_enabled_events(events: list[str], payload: str) -> list[str]:
    if not events:
        raise invalid("enabled_events must not be empty.", param="enabled_events")
    for name in events:
        known = name in thin_event_types() if payload == "thin" else not name.startswith("v")
        if not known:
            raise invalid(
                f"Invalid event type for a {payload} destination: {name}",
                param="enabled_events",
            )
    return list(dict.fromkeys(events))


def _check_events_from(values: list[str]) -> list[str]:
    for value in values:
        if value not in EVENTS_FROM:
            raise invalid(f"Invalid events_from: {value}", param="events_from")
    return list(dict.fromkeys(values))


def _render_destination(sb: Sandbox, destination: Obj, include: list[str]) -> Obj:
    out = sb.render(destination)
    if out.get("webhook_endpoint") is not None:
        out["webhook_endpoint"] = {
            "signing_secret": destination["_secret"]
            if "webhook_endpoint.signing_secret" in include
            else None,
            "url": destination["_url"] if "webhook_endpoint.url" in include else None,
        }
    return out


def _touch(sb: Sandbox, destination: Obj) -> None:
    destination["updated"] = rfc3339(sb.now())


@route("POST", "/v2/core/event_destinations", "v2.core.EventDestinationCreateParams")
def create_destination(ctx: Ctx, p: Obj) -> Obj:
    sb = ctx.sb
    if ctx.account is not None:
        raise StripeError(
            403, "Event destinations belong to the platform account.", code="account_invalid"
        )
    if p["type"] != "webhook_endpoint":
        raise invalid(
            "The sandbox delivers only to webhook endpoints (type=webhook_endpoint).",
            param="type",
        )
    endpoint = p.get("webhook_endpoint")
    if not endpoint:
        raise invalid("Missing required param: webhook_endpoint.", param="webhook_endpoint")
    if not str(endpoint["url"]).startswith(("http://", "https://")):
        raise invalid("Invalid URL: URL must be an http or https URL.", param="webhook_endpoint")
    payload = p["event_payload"]
    if payload == "thin" and p.get("snapshot_api_version"):
        raise invalid(
            "snapshot_api_version is only for snapshot destinations.",
            param="snapshot_api_version",
        )
    stamp = rfc3339(sb.now())
    destination: Obj = {
        "id": sb.new_id("ed_test", 48),
        "object": DESTINATION,
        "amazon_eventbridge": None,
        "azure_event_grid": None,
        "created": stamp,
        "description": p.get("description") or "",
        "enabled_events": _check_enabled_events(list(p["enabled_events"]), payload),
        "event_payload": payload,
        "events_from": _check_events_from(list(p.get("events_from") or ["@self"])),
        "livemode": False,
        "metadata": dict(p.get("metadata") or {}),
        "name": p["name"],
        "snapshot_api_version": (p.get("snapshot_api_version") or sb.api_version)
        if payload == "snapshot"
        else None,
        "status": "enabled",
        "status_details": None,
        "type": "webhook_endpoint",
        "updated": stamp,
        "webhook_endpoint": {"signing_secret": None, "url": None},
        "_url": endpoint["url"],
        "_secret": "whsec_" + sb.ids.token(32),
    }
    sb.store(destination, None)
    return _render_destination(sb, destination, list(p.get("include") or []))


def _get_destination(ctx: Ctx, ed_id: str) -> Obj:
    found = ctx.sb.find(ed_id, DESTINATION)
    if found is None or found.get("_owner") != ctx.account:
        raise no_such("event destination", ed_id)
    return found


@route("GET", "/v2/core/event_destinations/{ed_id}", "v2.core.EventDestinationRetrieveParams")
def retrieve_destination(ctx: Ctx, p: Obj, ed_id: str) -> Obj:
    return _render_destination(ctx.sb, _get_destination(ctx, ed_id), list(p.get("include") or []))


@route("POST", "/v2/core/event_destinations/{ed_id}", "v2.core.EventDestinationUpdateParams")
def update_destination(ctx: Ctx, p: Obj, ed_id: str) -> Obj:
    destination = _get_destination(ctx, ed_id)
    if "description" in p:
        destination["description"] = p["description"] or ""
    if "enabled_events" in p:
        destination["enabled_events"] = _check_enabled_events(
            list(p["enabled_events"]), destination["event_payload"]
        )
    if "metadata" in p:
        for key, value in (p["metadata"] or {}).items():
            if value is None:
                destination["metadata"].pop(key, None)
            else:
                destination["metadata"][key] = str(value)
    if "name" in p:
        destination["name"] = p["name"]
    if p.get("webhook_endpoint"):
        destination["_url"] = p["webhook_endpoint"]["url"]
    _touch(ctx.sb, destination)
    return _render_destination(ctx.sb, destination, list(p.get("include") or []))


@route("DELETE", "/v2/core/event_destinations/{ed_id}", "v2.core.EventDestinationDeleteParams")
def delete_destination(ctx: Ctx, p: Obj, ed_id: str) -> Obj:
    destination = _get_destination(ctx, ed_id)
    destination["_deleted"] = True
    return {"id": destination["id"], "object": DESTINATION, "deleted": True}


@route(
    "POST", "/v2/core/event_destinations/{ed_id}/disable", "v2.core.EventDestinationDisableParams"
)
def disable_destination(ctx: Ctx, p: Obj, ed_id: str) -> Obj:
    destination = _get_destination(ctx, ed_id)
    destination["status"] = "disabled"
    destination["status_details"] = {"disabled": {"reason": "user"}}
    _touch(ctx.sb, destination)
    return _render_destination(ctx.sb, destination, [])


@route("POST", "/v2/core/event_destinations/{ed_id}/enable", "v2.core.EventDestinationEnableParams")
def enable_destination(ctx: Ctx, p: Obj, ed_id: str) -> Obj:
    destination = _get_destination(ctx, ed_id)
    destination["status"] = "enabled"
    destination["status_details"] = None
    _touch(ctx.sb, destination)
    return _render_destination(ctx.sb, destination, [])


@route("POST", "/v2/core/event_destinations/{ed_id}/ping", "v2.core.EventDestinationPingParams")
def ping_destination(ctx: Ctx, p: Obj, ed_id: str) -> Obj:
    """Sends a ``v2.core.event_destination.ping`` to this destination (and only to it)."""
    sb = ctx.sb
    destination = _get_destination(ctx, ed_id)
    now, created = _stamp(sb)
    event: Obj = {
        "id": sb.new_id("evt_test", 52),
        "object": EVENT,
        "changes": None,
        "context": None,
        "created": created,
        "livemode": False,
        "reason": {
            "type": "request",
            "request": {"id": ctx.request_id, "idempotency_key": ctx.idempotency_key},
        },
        "related_object": {
            "id": destination["id"],
            "type": DESTINATION,
            "url": f"/v2/core/event_destinations/{destination['id']}",
        },
        "snapshot_event": None,
        "type": PING,
        "_ts": now,
    }
    sb.store(event, None)
    if destination["status"] == "enabled":
        sb.delivery_queue(event, destination)
    return sb.render(event)


@route("GET", "/v2/core/event_destinations", "v2.core.EventDestinationListParams")
def list_destinations(ctx: Ctx, p: Obj) -> Obj:
    items = ctx.sb.objects_of(DESTINATION, ctx.account)
    include = list(p.get("include") or [])
    return v2_paginate(
        ctx,
        items,
        p,
        "/v2/core/event_destinations",
        render=lambda d: _render_destination(ctx.sb, d, include),
    )


# --------------------------------------------------------------------------- events
@route("GET", "/v2/core/events/{evt_id}", "v2.core.EventRetrieveParams")
def retrieve_event(ctx: Ctx, p: Obj, evt_id: str) -> Obj:
    found = ctx.sb.find(evt_id, EVENT)
    if found is None or found.get("_owner") != ctx.account:
        raise no_such("event", evt_id)
    return ctx.sb.render(found)


@route("GET", "/v2/core/events", "v2.core.EventListParams")
def list_events(ctx: Ctx, p: Obj) -> Obj:
    items = ctx.sb.objects_of(EVENT, ctx.account)
    created = p.get("created") or {}
    for op in created:
        bound = _parse_rfc3339(created[op], f"created[{op}]")
        items = [e for e in items if _compare(_created_of(e), op, bound)]
    if "types" in p:
        if len(p["types"]) > 20:
            raise invalid("You may pass up to 20 event types.", param="types")
        wanted = set(p["types"])
        items = [e for e in items if e["type"] in wanted]
    if "object_id" in p:
        items = [e for e in items if (e.get("related_object") or {}).get("id") == p["object_id"]]
    return v2_paginate(ctx, items, p, "/v2/core/events")


def _created_of(event: Obj) -> datetime:
    return datetime.fromisoformat(event["created"].replace("Z", "+00:00"))


def _compare(value: datetime, op: str, bound: datetime) -> bool:
    if op == "gt":
        return value > bound
    if op == "gte":
        return value >= bound
    if op == "lt":
        return value < bound
    return value <= bound


# --------------------------------------------------------------------------- pagination
def _token(state: Obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, sort_keys=True).encode()).decode()


def _untoken(token: str) -> Obj:
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("filters"), dict):
        raise invalid("Invalid page token.", param="page")
    return state


def v2_page_params(raw: Obj) -> tuple[Obj, str | None]:
    """Split a v2 list request into its filters and its ``page`` token. A token carries the
    filters of the first request; only ``limit`` may be given with it."""
    page = raw.pop("page", None)
    if page is None:
        return raw, None
    if not isinstance(page, str):
        raise invalid("Invalid page token.", param="page")
    extra = sorted(k for k in raw if k != "limit")
    if extra:
        raise invalid(
            f"page cannot be combined with other parameters ({', '.join(extra)}).", param="page"
        )
    state = _untoken(page)
    params = dict(state["filters"])
    if "limit" in state:
        params["limit"] = state["limit"]
    if "limit" in raw:
        params["limit"] = raw["limit"]
    return params, page


def v2_paginate(
    ctx: Ctx,
    items: list[Obj],
    p: Obj,
    path: str,
    render: Any = None,
) -> Obj:
    """A v2 list page over ``items`` (newest first)."""
    limit = p.get("limit", V2_DEFAULT_LIMIT)
    if not 1 <= limit <= V2_MAX_LIMIT:
        raise invalid(
            f"Invalid limit: must be between 1 and {V2_MAX_LIMIT} (it currently is {limit}).",
            param="limit",
        )
    state = _untoken(p["page"]) if p.get("page") else None
    filters = {k: v for k, v in p.items() if k not in ("page", "limit")}
    ids = [o["id"] for o in items]
    start, end = 0, limit
    if state is not None:
        if "after" in state:
            after = state["after"]
            start = ids.index(after) + 1 if after in ids else len(ids)
            end = start + limit
        else:
            before = state["before"]
            end = ids.index(before) if before in ids else 0
            start = max(0, end - limit)
    page = items[start:end]
    next_url = prev_url = None
    if page and start + len(page) < len(items):
        token = _token({"filters": filters, "limit": limit, "after": page[-1]["id"]})
        next_url = f"{path}?page={token}"
    if page and start > 0:
        token = _token({"filters": filters, "limit": limit, "before": page[0]["id"]})
        prev_url = f"{path}?page={token}"
    draw = render or ctx.sb.render
    return {
        "data": [draw(o) for o in page],
        "next_page_url": next_url,
        "previous_page_url": prev_url,
    }
