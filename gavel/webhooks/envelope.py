"""The envelope of a Stripe event: the few fields intake and processing need, read from the
parsed body without trusting its shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SNAPSHOT_OBJECT = "event"
THIN_OBJECT = "v2.core.event"
# Thin events about v1 resources are typed "v1.<type>"; handlers register the v1 type.
THIN_V1_PREFIX = "v1."


class NotAnEvent(ValueError):
    """A JSON body that is not a Stripe event (wrong object, missing id, type or created)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    event_id: str
    event_type: str
    livemode: bool
    created_at: datetime
    account: str
    object_id: str
    object_type: str
    api_version: str
    thin: bool


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _created(value: Any) -> datetime:
    if isinstance(value, bool):
        raise NotAnEvent("created")
    if isinstance(value, int):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError) as error:  # no datetime holds that time
            raise NotAnEvent("created") from error
    if isinstance(value, str):
        # v2 events carry RFC 3339 timestamps with milliseconds.
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as error:
            raise NotAnEvent("created") from error
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise NotAnEvent("created")


def envelope_read(payload: Any) -> Envelope:
    """The envelope of a snapshot (``object: event``) or thin (``v2.core.event``) event."""
    if not isinstance(payload, dict):
        raise NotAnEvent("not an object")
    kind = payload.get("object")
    event_id, event_type = payload.get("id"), payload.get("type")
    if kind not in (SNAPSHOT_OBJECT, THIN_OBJECT):
        raise NotAnEvent("object")
    if not isinstance(event_id, str) or not event_id.startswith("evt_") or len(event_id) > 255:
        raise NotAnEvent("id")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 200:
        raise NotAnEvent("type")
    livemode = payload.get("livemode")
    if not isinstance(livemode, bool):
        raise NotAnEvent("livemode")
    created_at = _created(payload.get("created"))
    if kind == THIN_OBJECT:
        related = payload.get("related_object")
        related = related if isinstance(related, dict) else {}
        return Envelope(
            event_id=event_id,
            event_type=event_type,
            livemode=livemode,
            created_at=created_at,
            account=_text(payload.get("context"))[:255],
            object_id=_text(related.get("id"))[:255],
            object_type=_text(related.get("type"))[:100],
            api_version="",
            thin=True,
        )
    data = payload.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise NotAnEvent("data.object")
    data_object = data["object"]
    return Envelope(
        event_id=event_id,
        event_type=event_type,
        livemode=livemode,
        created_at=created_at,
        account=_text(payload.get("account"))[:255],
        object_id=_text(data_object.get("id"))[:255],
        object_type=_text(data_object.get("object"))[:100],
        api_version=_text(payload.get("api_version"))[:64],
        thin=False,
    )


def thin_type_to_v1(event_type: str) -> str:
    """``v1.payment_intent.succeeded`` -> ``payment_intent.succeeded``; others unchanged."""
    return event_type.removeprefix(THIN_V1_PREFIX)
