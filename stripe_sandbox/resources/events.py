"""Events API and webhook endpoints."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from stripe_sandbox.errors import invalid
from stripe_sandbox.resources.common import apply_metadata, created_filter
from stripe_sandbox.router import route

if TYPE_CHECKING:
    from stripe_sandbox.core import Ctx

Obj = dict[str, Any]


@route("GET", "/v1/events/{evt_id}", "EventRetrieveParams")
def retrieve_event(ctx: Ctx, p: Obj, evt_id: str) -> Obj:
    return ctx.sb.render(ctx.sb.get(ctx, evt_id, "event"))


def _type_match(etype: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(etype, pattern) if "*" in pattern else etype == pattern


@route("GET", "/v1/events", "EventListParams")
def list_events(ctx: Ctx, p: Obj) -> Obj:
    items = ctx.sb.objects_of("event", ctx.account)
    if "type" in p:
        items = [e for e in items if _type_match(e["type"], p["type"])]
    if "types" in p:
        if len(p["types"]) > 20:
            raise invalid("You may pass up to 20 event types.", param="types")
        items = [e for e in items if any(_type_match(e["type"], t) for t in p["types"])]
    if "delivery_success" in p:
        want = p["delivery_success"]
        items = [e for e in items if (e["pending_webhooks"] == 0) == want]
    items = created_filter(items, p.get("created"))
    return ctx.sb.paginate(ctx, items, p, "/v1/events")


@route("POST", "/v1/webhook_endpoints", "WebhookEndpointCreateParams")
def create_endpoint(ctx: Ctx, p: Obj) -> Obj:
    sb = ctx.sb
    if not str(p["url"]).startswith(("http://", "https://")):
        raise invalid("Invalid URL: URL must be an http or https URL.", param="url")
    ep = sb.new_object(
        "webhook_endpoint",
        "we",
        ctx.account,
        api_version=p.get("api_version"),
        application=None,
        description=p.get("description"),
        enabled_events=list(p["enabled_events"]),
        status="enabled",
        url=p["url"],
    )
    ep["_connect"] = bool(p.get("connect"))
    ep["_secret"] = "whsec_" + sb.ids.token(32)
    apply_metadata(ep, p.get("metadata"))
    out = sb.render(ep)
    out["secret"] = ep["_secret"]
    return out


def _get_ep(ctx: Ctx, we_id: str) -> Obj:
    return ctx.sb.get(ctx, we_id, "webhook_endpoint")


@route("GET", "/v1/webhook_endpoints/{we_id}", "WebhookEndpointRetrieveParams")
def retrieve_endpoint(ctx: Ctx, p: Obj, we_id: str) -> Obj:
    return ctx.sb.render(_get_ep(ctx, we_id))


@route("POST", "/v1/webhook_endpoints/{we_id}", "WebhookEndpointUpdateParams")
def update_endpoint(ctx: Ctx, p: Obj, we_id: str) -> Obj:
    ep = _get_ep(ctx, we_id)
    if "url" in p:
        ep["url"] = p["url"]
    if "enabled_events" in p:
        ep["enabled_events"] = list(p["enabled_events"])
    if "description" in p:
        ep["description"] = p["description"] or None
    if "disabled" in p:
        ep["status"] = "disabled" if p["disabled"] else "enabled"
    apply_metadata(ep, p.get("metadata"))
    return ctx.sb.render(ep)


@route("DELETE", "/v1/webhook_endpoints/{we_id}", "WebhookEndpointDeleteParams")
def delete_endpoint(ctx: Ctx, p: Obj, we_id: str) -> Obj:
    ep = _get_ep(ctx, we_id)
    ep["_deleted"] = True
    return {"id": ep["id"], "object": "webhook_endpoint", "deleted": True}


@route("GET", "/v1/webhook_endpoints", "WebhookEndpointListParams")
def list_endpoints(ctx: Ctx, p: Obj) -> Obj:
    items = ctx.sb.objects_of("webhook_endpoint", ctx.account)
    items = created_filter(items, p.get("created"))
    return ctx.sb.paginate(ctx, items, p, "/v1/webhook_endpoints")
