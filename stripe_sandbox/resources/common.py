"""Helpers shared by resource handlers."""

from __future__ import annotations

from typing import Any

from stripe_sandbox.errors import invalid

Obj = dict[str, Any]


def apply_metadata(obj: Obj, metadata: Any, previous: Obj | None = None) -> None:
    """Stripe metadata semantics: merge keys, ``""`` unsets a key, ``metadata=""`` clears."""
    old = dict(obj.get("metadata") or {})
    if metadata == "":
        new: dict[str, str] = {}
    elif isinstance(metadata, dict):
        new = dict(old)
        for k, v in metadata.items():
            if len(k) > 40:
                raise invalid(
                    f"Metadata key lengths must be at most 40 characters (key '{k}').",
                    param=f"metadata[{k}]",
                )
            if v == "" or v is None:
                new.pop(k, None)
            else:
                if len(str(v)) > 500:
                    raise invalid(
                        "Metadata values can have up to 500 characters.", param=f"metadata[{k}]"
                    )
                new[k] = str(v)
        if len(new) > 50:
            raise invalid("You can have up to 50 metadata keys.", param="metadata")
    else:
        return
    if new != old and previous is not None:
        previous["metadata"] = old
    obj["metadata"] = new


def update_fields(obj: Obj, params: Obj, fields: list[str], previous: Obj) -> None:
    for f in fields:
        if f in params:
            value = params[f]
            if value == "":
                value = None
            if obj.get(f) != value:
                previous[f] = obj.get(f)
                obj[f] = value


def created_filter(items: list[Obj], created: Any, field: str = "created") -> list[Obj]:
    if created is None:
        return items
    if isinstance(created, int):
        return [o for o in items if o.get(field) == created]
    out = items
    if "gt" in created:
        out = [o for o in out if o[field] > created["gt"]]
    if "gte" in created:
        out = [o for o in out if o[field] >= created["gte"]]
    if "lt" in created:
        out = [o for o in out if o[field] < created["lt"]]
    if "lte" in created:
        out = [o for o in out if o[field] <= created["lte"]]
    return out


def list_of(sb: Any, items: list[Obj], url: str) -> Obj:
    """A full (non-paginated) embedded list, e.g. ``charge.refunds``."""
    return {
        "object": "list",
        "data": [sb.render(o) for o in items],
        "has_more": False,
        "total_count": len(items),
        "url": url,
    }


def need(params: Obj, key: str) -> Any:
    if key not in params or params[key] in (None, ""):
        raise invalid(f"Missing required param: {key}.", param=key)
    return params[key]
