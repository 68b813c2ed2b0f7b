"""The sandbox: state, request pipeline, scheduler, events and webhook delivery."""

from __future__ import annotations

import base64
import copy
import hashlib
import heapq
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import stripe

from stripe_sandbox import router
from stripe_sandbox._shape_keys import FIXTURE_KEYS
from stripe_sandbox.clock import Clock
from stripe_sandbox.control import ControlMixin
from stripe_sandbox.encoding import decode_form, decode_pairs
from stripe_sandbox.errors import SandboxError, StripeError, invalid, no_such
from stripe_sandbox.faults import FaultSet
from stripe_sandbox.idempotency import IdemEntry
from stripe_sandbox.ids import IdFactory
from stripe_sandbox.params import validate
from stripe_sandbox.shapes import template

if TYPE_CHECKING:
    from stripe_sandbox.http_client import SandboxHTTPClient

Obj = dict[str, Any]
Transport = Callable[[str, dict[str, str], bytes], int]

DEFAULT_API_VERSION = "2026-10-28.endive"
DAY = 86400

# Stripe documents ``data.previous_attributes`` for ``*.updated`` events; these other
# "object changed" events carry it as well.
PREVIOUS_ATTRIBUTE_EVENTS = frozenset(
    {
        "charge.captured",
        "charge.refunded",
        "charge.refund.updated",
        "charge.expired",
        "charge.dispute.closed",
        "transfer.reversed",
        "application_fee.refunded",
    }
)

ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()  # noqa: SIM905
)


@dataclass
class Ctx:
    """Per-request context handed to resource handlers."""

    sb: Sandbox
    account: str | None
    request_id: str | None = None
    idempotency_key: str | None = None
    api_version: str = DEFAULT_API_VERSION
    method: str = "POST"
    path: str = ""

    @property
    def owner(self) -> str | None:
        return self.account


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    timeout: bool = False
    hang_seconds: float = 0.0

    def json(self) -> Any:
        return json.loads(self.body)


def _default_transport(timeout: float) -> Transport:
    import urllib.error
    import urllib.request

    def send(url: str, headers: dict[str, str], body: bytes) -> int:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http(s): {url}")
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                return int(resp.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    return send


def _api_key_from(auth: str) -> str:
    """Secret key from ``Bearer <key>`` or HTTP Basic (``curl -u sk_test_...:``)."""
    scheme, _, value = auth.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip()).decode().split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            return ""
    return ""


def _json_body(text: str) -> Obj:
    """A v2 request body: one JSON object."""
    if not text.strip():
        return {}
    try:
        parsed = json.loads(text)
    except ValueError:
        raise invalid("Request body must be a JSON object (v2 API).") from None
    if not isinstance(parsed, dict):
        raise invalid("Request body must be a JSON object (v2 API).")
    return parsed


def _ensure_resources_loaded() -> None:
    from stripe_sandbox import resources  # noqa: F401  (registers routes)


class Sandbox(ControlMixin):
    """A stateful, in-memory emulation of Stripe's API (Connect included).

    Create one per test. Reach it through :meth:`http_client` (in process, no sockets),
    the standalone server (``python -m stripe_sandbox``) or the control methods below.
    """

    def __init__(
        self,
        api_keys: Iterable[str] = ("sk_test_sandbox",),
        *,
        card_fee_bps: int = 290,
        card_fee_fixed: int = 30,
        available_delay_days: int = 2,
        auth_expiry_days: int = 7,
        payout_arrival_days: int = 2,
        payout_in_transit_seconds: int = 3600,
        dispute_fee: int = 1500,
        card_processing_seconds: int = 0,
        api_version: str = DEFAULT_API_VERSION,
        start_time: int | None = None,
        realtime: bool = False,
        webhook_mode: str = "immediate",
        webhook_transport: Transport | None = None,
        webhook_timeout: float = 10.0,
        webhook_retry_delays: Iterable[int] = (300, 1800, 10800),
        signature_clock: str = "wall",
        idempotency_ttl: int = DAY,
        event_retention_days: int = 30,
        account_link_ttl: int = 300,
        requirements_deadline_days: int = 14,
        base_url: str = "http://sandbox.invalid",
        seed: int | None = None,
        platform_account_id: str | None = None,
        platform_country: str = "US",
        default_currency: str = "usd",
    ) -> None:
        _ensure_resources_loaded()
        if webhook_mode not in ("immediate", "queued", "background"):
            raise ValueError("webhook_mode must be immediate, queued or background")
        self.api_keys = set(api_keys)
        self.card_fee_bps = card_fee_bps
        self.card_fee_fixed = card_fee_fixed
        self.available_delay_days = available_delay_days
        self.auth_expiry_days = auth_expiry_days
        self.payout_arrival_days = payout_arrival_days
        self.payout_in_transit_seconds = payout_in_transit_seconds
        self.dispute_fee = dispute_fee
        self.card_processing_seconds = card_processing_seconds
        self.api_version = api_version
        self.webhook_mode = webhook_mode
        self.webhook_timeout = webhook_timeout
        self.webhook_transport: Transport = webhook_transport or _default_transport(webhook_timeout)
        self.webhook_retry_delays = list(webhook_retry_delays)
        self.signature_clock = signature_clock
        self.idempotency_ttl = idempotency_ttl
        self.event_retention = event_retention_days * DAY
        self.account_link_ttl = account_link_ttl
        self.requirements_deadline_days = requirements_deadline_days
        self.base_url = base_url.rstrip("/")
        self.platform_country = platform_country
        self.default_currency = default_currency

        self.lock = threading.RLock()
        self.clock = Clock(start_time, realtime)
        self.ids = IdFactory(seed)
        self.faults = FaultSet(seed or 0)
        self.objects: dict[str, Obj] = {}
        self._seq = 0
        self._by_type: dict[str, dict[str, None]] = {}
        self._balance_alerts: set[str] = set()
        self._tasks: list[tuple[int, int, str, Obj]] = []
        self._deliveries_due: list[Obj] = []
        # (second, count): the milliseconds of v2 events created within one sandbox second
        self._v2_event_clock: tuple[int | None, int] = (None, 0)
        self.deliveries_log: list[Obj] = []
        self._idem: dict[tuple[str, str, str], IdemEntry] = {}
        self._deliver_local = threading.local()
        self._wakeup = threading.Event()
        self.platform_id = platform_account_id or self.ids.new("acct", 16)
        from stripe_sandbox.resources import accounts

        accounts.create_platform(self)

    # ------------------------------------------------------------------ basics
    def now(self) -> int:
        return self.clock.now()

    def new_id(self, prefix: str, length: int = 24) -> str:
        while True:
            obj_id = self.ids.new(prefix, length)
            if obj_id not in self.objects:
                return obj_id

    def new_object(self, kind: str, prefix: str | None, owner: str | None, **values: Any) -> Obj:
        """Create an object from the fixture-derived template of ``kind`` and store it."""
        obj = template(kind)
        if prefix is not None:
            obj["id"] = values.pop("id", None) or self.new_id(
                prefix, 16 if prefix == "acct" else 24
            )
        if "created" in obj or kind not in FIXTURE_KEYS:
            obj["created"] = self.now()
        if "livemode" in obj:
            obj["livemode"] = False
        obj.update(values)
        obj["object"] = obj.get("object") or kind
        if prefix is not None:
            self.store(obj, owner)
        return obj

    def store(self, obj: Obj, owner: str | None) -> Obj:
        self._seq += 1
        obj["_owner"] = owner
        obj["_seq"] = self._seq
        self.objects[obj["id"]] = obj
        self._by_type.setdefault(obj["object"], {})[obj["id"]] = None
        return obj

    def reindex(self) -> None:
        """Rebuild the per-type index (after loading state)."""
        self._by_type = {}
        for obj in sorted(self.objects.values(), key=lambda o: o.get("_seq", 0)):
            if "object" in obj and "id" in obj:
                self._by_type.setdefault(obj["object"], {})[obj["id"]] = None

    def find(self, obj_id: str | None, kind: str | None = None) -> Obj | None:
        if not obj_id:
            return None
        obj = self.objects.get(obj_id)
        if obj is None or obj.get("_deleted"):
            return None
        if kind is not None and obj.get("object") != kind:
            return None
        return obj

    def must(self, obj_id: str, kind: str) -> Obj:
        obj = self.find(obj_id, kind)
        if obj is None:
            raise SandboxError(f"no such {kind}: {obj_id}")
        return obj

    def get(
        self, ctx: Ctx, obj_id: str, kind: str, label: str | None = None, param: str = "id"
    ) -> Obj:
        """Fetch an object visible to the requesting account or raise Stripe's 404."""
        obj = self.find(obj_id, kind)
        if obj is None or obj.get("_owner") != ctx.account:
            raise no_such(label or kind, obj_id, param)
        return obj

    def objects_of(self, kind: str, owner: str | object | None = ...) -> list[Obj]:
        out = []
        for obj_id in self._by_type.get(kind, {}):
            o = self.objects.get(obj_id)
            if o is None or o.get("_deleted"):
                continue
            if owner is ... or o.get("_owner") == owner:
                out.append(o)
        out.sort(key=lambda o: (o.get("created") or 0, o["_seq"]), reverse=True)
        return out

    def render(self, obj: Obj) -> Obj:
        """Public JSON of a stored object (computed fields refreshed, private keys dropped)."""
        from stripe_sandbox.resources import render_hooks

        out: Obj = {k: obj[k] for k in ("id", "object") if k in obj}  # Stripe's key order
        out.update((k, copy.deepcopy(v)) for k, v in obj.items() if not k.startswith("_"))
        hook = render_hooks.get(obj.get("object", ""))
        if hook is not None:
            hook(self, obj, out)
        return out

    # ------------------------------------------------------------------ money helpers
    def card_fee(self, amount: int, currency: str) -> int:
        """Stripe's card fee: round-half-up(amount * bps / 10000) + fixed.

        The fixed part is given in minor units of a two-decimal currency; for zero-decimal
        currencies it is divided by 100 (rounded half up), e.g. 30 cents -> 0 JPY.
        """
        pct = (amount * self.card_fee_bps * 2 + 10000) // 20000
        fixed = self.card_fee_fixed
        if currency.lower() in ZERO_DECIMAL:
            fixed = (fixed + 50) // 100
        return pct + fixed

    # ------------------------------------------------------------------ scheduler
    def schedule(self, due: int, kind: str, **payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._tasks, (due, self._seq, kind, payload))
        self._wakeup.set()

    def _run_due_tasks(self) -> None:
        from stripe_sandbox.resources import task_handlers

        while self._tasks and self._tasks[0][0] <= self.now():
            _, _, kind, payload = heapq.heappop(self._tasks)
            task_handlers[kind](self, **payload)

    def _next_due(self) -> int | None:
        dues: list[int] = []
        if self._tasks:
            dues.append(self._tasks[0][0])
        if self._deliveries_due and not self.faults.webhooks.held:
            dues.append(min(d["due"] for d in self._deliveries_due))
        return min(dues) if dues else None

    def advance(self, seconds: int) -> int:
        """Move sandbox time forward, running everything that falls due. Returns new time."""
        return self.advance_to(self.now() + int(seconds))

    def advance_to(self, ts: int) -> int:
        while True:
            with self.lock:
                nxt = self._next_due()
                if nxt is None or nxt > ts:
                    self.clock.set(ts)
                    self._run_due_tasks()
                    self._purge()
                    break
                self.clock.set(nxt)
                self._run_due_tasks()
            self.deliver_pending()
        self.deliver_pending()
        return self.now()

    def tick(self) -> None:
        """Run work due at the current time (used by the real-time server loop)."""
        with self.lock:
            self._run_due_tasks()
            self._purge()
        self.deliver_pending()

    def _purge(self) -> None:
        now = self.now()
        for key, entry in list(self._idem.items()):
            if not entry.in_flight and now - entry.created >= self.idempotency_ttl:
                del self._idem[key]
        cutoff = now - self.event_retention
        for kind, created_key in (("event", "created"), ("v2.core.event", "_ts")):
            events = self._by_type.get(kind, {})
            expired = []
            for obj_id in events:  # insertion order == creation order
                ev = self.objects.get(obj_id)
                if ev is not None and ev[created_key] >= cutoff:
                    break
                expired.append(obj_id)
            for obj_id in expired:
                events.pop(obj_id, None)
                self.objects.pop(obj_id, None)

    # ------------------------------------------------------------------ events & webhooks
    def emit(
        self,
        ctx: Ctx | None,
        etype: str,
        obj: Obj,
        previous: Obj | None = None,
        owner: str | object | None = ...,
        data_object: Obj | None = None,
    ) -> Obj:
        """Record an event about ``obj`` (snapshot now) and queue webhook deliveries."""
        ev_owner = obj.get("_owner") if owner is ... else owner
        assert ev_owner is None or isinstance(ev_owner, str)
        event = self.new_object(
            "event",
            "evt",
            ev_owner,
            api_version=self.api_version,
            type=etype,
            data={"object": data_object if data_object is not None else self.render(obj)},
            request={
                "id": ctx.request_id if ctx else None,
                "idempotency_key": ctx.idempotency_key if ctx else None,
            },
            pending_webhooks=0,
        )
        if previous and (etype.endswith(".updated") or etype in PREVIOUS_ATTRIBUTE_EVENTS):
            event["data"]["previous_attributes"] = previous
        if ev_owner is not None:
            event["account"] = ev_owner
        from stripe_sandbox.resources.thin_events import (
            snapshot_destinations_for,
            thin_event_emit,
        )

        endpoints = self._endpoints_for(event) + snapshot_destinations_for(self, event)
        event["pending_webhooks"] = len(endpoints)
        for ep in endpoints:
            self.delivery_queue(event, ep)
        thin_event_emit(self, ctx, event)
        return event

    def delivery_queue(self, event: Obj, target: Obj) -> None:
        """Queue the first delivery attempt of ``event`` to a webhook endpoint or an event
        destination (twice while webhooks are duplicated, late while they are delayed)."""
        copies = 2 if self.faults.webhooks.duplicate else 1
        for n in range(copies):
            self._seq += 1
            self._deliveries_due.append(
                {
                    "due": self.now() + self.faults.webhooks.delay,
                    "seq": self._seq,
                    "event_id": event["id"],
                    "endpoint_id": target["id"],
                    "attempt": 1,
                    "dup": n > 0,
                }
            )
        self._wakeup.set()

    def _endpoints_for(self, event: Obj) -> list[Obj]:
        owner = event.get("_owner")
        out = []
        for ep in self.objects_of("webhook_endpoint"):
            if ep.get("status") != "enabled":
                continue
            ep_owner = ep.get("_owner")
            connect = bool(ep.get("_connect"))
            if ep_owner is None:
                if (owner is None) == connect:
                    continue
            elif ep_owner != owner or connect:
                continue
            events = ep.get("enabled_events") or []
            if "*" in events or event["type"] in events:
                out.append(ep)
        out.sort(key=lambda e: e["_seq"])
        return out

    def sign(self, payload: bytes, secret: str, ts: int | None = None) -> str:
        """``Stripe-Signature`` header value exactly as Stripe computes it."""
        if ts is None:
            ts = int(time.time()) if self.signature_clock == "wall" else self.now()
        signed = f"{ts}.".encode() + payload
        sig = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        return f"t={ts},v1={sig}"

    def deliver_pending(self) -> int:
        """Deliver every webhook attempt that is due now (unless held). Returns attempts made."""
        if getattr(self._deliver_local, "active", False):
            return 0
        self._deliver_local.active = True
        made = 0
        try:
            while True:
                with self.lock:
                    if self.faults.webhooks.held:
                        break
                    now = self.now()
                    batch = [d for d in self._deliveries_due if d["due"] <= now]
                    if not batch:
                        break
                    self._deliveries_due = [d for d in self._deliveries_due if d["due"] > now]
                    batch.sort(key=lambda d: (d["due"], d["seq"]))
                    if self.faults.webhooks.shuffle:
                        self.faults.rng.shuffle(batch)
                    jobs = []
                    for d in batch:
                        event = self.objects.get(d["event_id"])
                        ep = self.find(d["endpoint_id"])
                        if event is None or ep is None:
                            continue
                        body = json.dumps(self._delivery_body(event), indent=2).encode()
                        headers = {
                            "Content-Type": "application/json; charset=utf-8",
                            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                            "Stripe-Signature": self.sign(body, ep["_secret"]),
                        }
                        jobs.append((d, ep.get("_url") or ep["url"], headers, body))
                for d, url, headers, body in jobs:
                    status: int | None
                    error: str | None = None
                    try:
                        status = int(self.webhook_transport(url, headers, body))
                    except Exception as e:  # noqa: BLE001 - any transport failure is a failed attempt
                        status = None
                        error = f"{type(e).__name__}: {e}"
                    made += 1
                    with self.lock:
                        self._record_delivery(d, url, headers, body, status, error)
        finally:
            self._deliver_local.active = False
        return made

    def _delivery_body(self, event: Obj) -> Obj:
        from stripe_sandbox.resources.thin_events import EVENT, notification_of

        if event.get("object") == EVENT:
            return notification_of(event)
        return self.render(event)

    def _record_delivery(
        self,
        d: Obj,
        url: str,
        headers: dict[str, str],
        body: bytes,
        status: int | None,
        error: str | None,
    ) -> None:
        ok = status is not None and 200 <= status < 300
        event = self.objects.get(d["event_id"])
        self.deliveries_log.append(
            {
                "id": self.new_id("wd"),
                "event_id": d["event_id"],
                "event_type": event["type"] if event else None,
                "endpoint_id": d["endpoint_id"],
                "url": url,
                "attempt": d["attempt"],
                "status": status,
                "succeeded": ok,
                "error": error,
                "delivered_at": self.now(),
                "headers": dict(headers),
                "body": body.decode(),
            }
        )
        if ok or d["attempt"] > len(self.webhook_retry_delays):
            if event is not None and event.get("pending_webhooks", 0) > 0 and not d.get("dup"):
                event["pending_webhooks"] -= 1
            return
        self._seq += 1
        self._deliveries_due.append(
            {
                **d,
                "due": self.now() + self.webhook_retry_delays[d["attempt"] - 1],
                "attempt": d["attempt"] + 1,
                "seq": self._seq,
            }
        )

    # ------------------------------------------------------------------ request pipeline
    def handle(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        body: bytes | str | None = None,
    ) -> Response:
        """Process one API request exactly as Stripe would and return the HTTP response."""
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        resp = self._handle(method.upper(), url, lowered, body)
        self._after_control()
        return resp

    def _after_control(self) -> None:
        if self.webhook_mode == "immediate":
            self.deliver_pending()
        elif self.webhook_mode == "background":
            self._wakeup.set()

    def _json_response(
        self,
        status: int,
        payload: Any,
        req_id: str,
        version: str,
        extra: dict[str, str] | None = None,
    ) -> Response:
        headers = {
            "Content-Type": "application/json",
            "Request-Id": req_id,
            "Stripe-Version": version,
            "Cache-Control": "no-cache, no-store",
            "Access-Control-Allow-Origin": "*",
        }
        headers.update(extra or {})
        return Response(status, headers, json.dumps(payload, indent=2).encode())

    def _error_response(
        self, err: StripeError, req_id: str, version: str, idem_key: str | None
    ) -> Response:
        extra = dict(err.headers)
        if idem_key:
            extra["Idempotency-Key"] = idem_key
        return self._json_response(err.status, err.body(req_id), req_id, version, extra)

    def _handle(
        self, method: str, url: str, headers: dict[str, str], body: bytes | str | None
    ) -> Response:
        parts = urlsplit(url)
        path = parts.path or "/"
        with self.lock:
            req_id = self.new_id("req", 14)
        version = headers.get("stripe-version") or self.api_version
        idem_key = headers.get("idempotency-key") if method == "POST" else None

        # 1. authentication
        api_key = _api_key_from(headers.get("authorization", ""))
        if not api_key:
            return self._error_response(
                StripeError(
                    401,
                    "You did not provide an API key. You need to provide your API key in the "
                    "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                    "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for "
                    "details, or we can help at https://support.stripe.com/.",
                ),
                req_id,
                version,
                None,
            )
        if api_key not in self.api_keys:
            masked = api_key[:8] + "*" * max(0, len(api_key) - 12) + api_key[-4:]
            return self._error_response(
                StripeError(401, f"Invalid API Key provided: {masked}", code="api_key_invalid"),
                req_id,
                version,
                None,
            )

        # 2. injected faults (decided before anything is applied)
        with self.lock:
            decision = self.faults.decide(method, path)
        if decision.error_status is not None:
            if decision.latency:
                time.sleep(decision.latency)
            return self._fault_error(decision.error_status, req_id, version, idem_key)

        # 3. connected account: ``Stripe-Account``, or ``Stripe-Context`` (what the SDK sends
        # to fetch a thin event's related object) naming one connected account
        account = headers.get("stripe-account") or None
        context = headers.get("stripe-context") or None
        if context is not None and ("/" in context or (account is not None and account != context)):
            return self._error_response(
                invalid(
                    f"Unsupported Stripe-Context: '{context}'. The sandbox takes one connected "
                    "account id, the same as Stripe-Account when both are given.",
                ),
                req_id,
                version,
                None,
            )
        account = account or context
        if account is not None:
            with self.lock:
                acct = self.find(account, "account")
                ok = (
                    acct is not None
                    and account != self.platform_id
                    and not acct.get("_deauthorized")
                )
            if not ok and account != self.platform_id:
                masked = api_key[:8] + "*" * max(0, len(api_key) - 12) + api_key[-4:]
                return self._error_response(
                    StripeError(
                        403,
                        f"The provided key '{masked}' does not have access to account "
                        f"'{account}' (or that account does not exist). Application access "
                        "may have been revoked.",
                        type="invalid_request_error",
                        code="account_invalid",
                    ),
                    req_id,
                    version,
                    None,
                )
            if account == self.platform_id:
                account = None

        # 4. parameters
        try:
            if method in ("GET", "DELETE"):
                raw = decode_pairs(parse_qsl(parts.query, keep_blank_values=True))
                if method == "DELETE" and body:
                    raw.update(decode_form(body.decode() if isinstance(body, bytes) else body))
            else:
                text = body.decode() if isinstance(body, bytes) else (body or "")
                raw = _json_body(text) if path.startswith("/v2/") else decode_form(text)
                if parts.query:
                    raw.update(decode_pairs(parse_qsl(parts.query, keep_blank_values=True)))
        except StripeError as e:
            return self._error_response(e, req_id, version, idem_key)

        # 5. idempotency
        idem_slot: tuple[str, str, str] | None = None
        if idem_key:
            slot = (api_key, account or "", idem_key)
            fingerprint = hashlib.sha256(
                json.dumps([method, path, raw], sort_keys=True).encode()
            ).hexdigest()
            with self.lock:
                self._purge_key(slot)
                entry = self._idem.get(slot)
                if entry is not None:
                    if entry.in_flight:
                        return self._error_response(
                            StripeError(
                                409,
                                "There is currently another in-progress request using this "
                                "Idempotent Key (that probably means you submitted twice, and "
                                "the other request is still going through): "
                                f"{idem_key}. Please try again later.",
                                type="idempotency_error",
                                code="idempotency_key_in_use",
                                headers={"Stripe-Should-Retry": "true"},
                            ),
                            req_id,
                            version,
                            idem_key,
                        )
                    if entry.path != path:
                        return self._error_response(
                            StripeError(
                                400,
                                "Keys for idempotent requests can only be used for the same "
                                f"endpoint they were first used for ('{entry.path}' vs "
                                f"'{path}'). Try using a key other than '{idem_key}' if you "
                                "meant to execute a different request.",
                                type="idempotency_error",
                            ),
                            req_id,
                            version,
                            idem_key,
                        )
                    if entry.fingerprint != fingerprint:
                        return self._error_response(
                            StripeError(
                                400,
                                "Keys for idempotent requests can only be used with the same "
                                "parameters they were first used with. Try using a key other "
                                f"than '{idem_key}' if you meant to execute a different "
                                "request.",
                                type="idempotency_error",
                            ),
                            req_id,
                            version,
                            idem_key,
                        )
                    replay_headers = dict(entry.headers)
                    replay_headers["Idempotent-Replayed"] = "true"
                    return Response(entry.status, replay_headers, entry.body)
                self._idem[slot] = IdemEntry(fingerprint, path, self.now())
                idem_slot = slot

        # 6. latency (holds the idempotency key in flight)
        if decision.latency:
            time.sleep(decision.latency)

        # 7. apply
        try:
            with self.lock:
                ctx = Ctx(self, account, req_id, idem_key, version, method, path)
                status, payload = self._dispatch(ctx, method, path, raw)
                extra = {"Idempotency-Key": idem_key} if idem_key else {}
                if account:
                    extra["Stripe-Account"] = account
                resp = self._json_response(status, payload, req_id, version, extra)
        except StripeError as e:
            resp = self._error_response(e, req_id, version, idem_key)
        except Exception as e:  # noqa: BLE001 - a sandbox bug surfaces as Stripe's api_error
            resp = self._error_response(
                StripeError(
                    500, f"Sandbox internal error: {type(e).__name__}: {e}", type="api_error"
                ),
                req_id,
                version,
                idem_key,
            )

        # 8. store for idempotent replay (not 500s: a retry may re-execute)
        if idem_slot is not None:
            with self.lock:
                entry = self._idem.get(idem_slot)
                if entry is not None:
                    if resp.status >= 500:
                        del self._idem[idem_slot]
                    else:
                        entry.in_flight = False
                        entry.status = resp.status
                        entry.body = resp.body
                        entry.headers = dict(resp.headers)
        if decision.timeout:
            resp.timeout = True
            resp.hang_seconds = decision.hang_seconds
        return resp

    def _purge_key(self, slot: tuple[str, str, str]) -> None:
        entry = self._idem.get(slot)
        if entry and not entry.in_flight and self.now() - entry.created >= self.idempotency_ttl:
            del self._idem[slot]

    def _fault_error(
        self, status: int, req_id: str, version: str, idem_key: str | None
    ) -> Response:
        if status == 429:
            err = StripeError(
                429,
                "Request rate limit exceeded. Learn more about rate limits here "
                "https://stripe.com/docs/rate-limits.",
                code="rate_limit",
            )
        elif status == 409:
            err = StripeError(
                409,
                "This object cannot be accessed right now because another API request or "
                "Stripe process is currently accessing it. If you see this error "
                "intermittently, retry the request.",
                code="lock_timeout",
            )
        elif status >= 500:
            err = StripeError(
                status,
                "An unknown error occurred",
                type="api_error",
            )
        else:
            err = StripeError(status, "Injected fault", code="sandbox_fault")
        return self._error_response(err, req_id, version, idem_key)

    def _dispatch(self, ctx: Ctx, method: str, path: str, raw: Obj) -> tuple[int, Any]:
        found = router.resolve(method, path)
        if found is None or found == "method":
            raise StripeError(
                404,
                f"Unrecognized request URL ({method} {path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            )
        assert not isinstance(found, str)
        rt, args = found
        page = None
        if path.startswith("/v2/") and method == "GET" and "page" in raw:
            from stripe_sandbox.resources.thin_events import v2_page_params

            raw, page = v2_page_params(dict(raw))
        params = validate(raw, rt.params)
        if page is not None:
            params["page"] = page
        result = rt.handler(ctx, params, **args)
        status = 200
        if isinstance(result, tuple):
            status, result = result
        expand = params.get("expand") or []
        if expand:
            result = self.expand(result, expand)
        return status, result

    # ------------------------------------------------------------------ expansion
    def expand(self, payload: Obj, paths: list[str]) -> Obj:
        for p in paths:
            self._expand_path(payload, p.split("."), p)
        return payload

    def _expand_path(self, node: Any, parts: list[str], full: str) -> None:
        if not parts or not isinstance(node, dict):
            return
        head, rest = parts[0], parts[1:]
        if node.get("object") == "list" and head == "data" and rest:
            for item in node.get("data", []):
                self._expand_path(item, rest, full)
            return
        if head not in node:
            raise invalid(f"This property cannot be expanded ({full}).", param="expand")
        value = node[head]
        if isinstance(value, str):
            target = self.objects.get(value)
            if target is None:
                raise invalid(f"This property cannot be expanded ({full}).", param="expand")
            node[head] = value = self.render(target)
        elif isinstance(value, list):
            new = []
            for v in value:
                t = self.objects.get(v) if isinstance(v, str) else None
                new.append(self.render(t) if t is not None else v)
            node[head] = value = new
        if rest:
            if isinstance(value, list):
                for v in value:
                    self._expand_path(v, rest, full)
            else:
                self._expand_path(value, rest, full)

    # ------------------------------------------------------------------ lists
    def paginate(self, ctx: Ctx, items: list[Obj], params: Obj, url: str) -> Obj:
        """Stripe list object over ``items`` (already newest first)."""
        limit = params.get("limit", 10)
        if not 1 <= limit <= 100:
            raise invalid(
                f"Invalid limit: must be between 1 and 100 (it currently is {limit}).",
                param="limit",
            )
        start = params.get("starting_after")
        end = params.get("ending_before")
        ids = [o["id"] for o in items]
        if start:
            if start not in ids:
                raise invalid(f"No such object: '{start}'", param="starting_after")
            i = ids.index(start)
            window = items[i + 1 :]
            page = window[:limit]
            has_more = len(window) > limit
        elif end:
            if end not in ids:
                raise invalid(f"No such object: '{end}'", param="ending_before")
            i = ids.index(end)
            window = items[:i]
            page = window[-limit:]
            has_more = len(window) > limit
        else:
            page = items[:limit]
            has_more = len(items) > limit
        return {
            "object": "list",
            "data": [self.render(o) for o in page],
            "has_more": has_more,
            "url": url,
        }

    def ctx(self, account: str | None = None) -> Ctx:
        """A request-less context (for clock tasks and control calls)."""
        return Ctx(self, account)

    # ------------------------------------------------------------------ clients
    def http_client(self) -> SandboxHTTPClient:
        """An in-process ``stripe.HTTPClient`` bound to this sandbox (no sockets)."""
        from stripe_sandbox.http_client import SandboxHTTPClient

        return SandboxHTTPClient(self)

    def client(
        self,
        api_key: str | None = None,
        *,
        stripe_account: str | None = None,
        max_network_retries: int = 0,
        **kwargs: Any,
    ) -> stripe.StripeClient:
        """Convenience: a ``stripe.StripeClient`` wired to this sandbox in process."""
        return stripe.StripeClient(
            api_key or sorted(self.api_keys)[0],
            stripe_account=stripe_account,
            http_client=self.http_client(),
            base_addresses={
                "api": self.base_url,
                "connect": self.base_url,
                "files": self.base_url,
                "meter_events": self.base_url,
            },
            max_network_retries=max_network_retries,
            **kwargs,
        )


def control_methods() -> list[str]:
    """Names of the control API methods exposed on ``POST /_sandbox/<name>``."""
    from stripe_sandbox.control import CONTROL_METHODS

    return list(CONTROL_METHODS)
