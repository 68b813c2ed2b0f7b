"""The control API: what a test (or the demo) can do that Stripe's API cannot.

All methods live on :class:`stripe_sandbox.Sandbox` and are also reachable over HTTP on the
standalone server as ``POST /_sandbox/<method>`` with a JSON object of keyword arguments.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from stripe_sandbox.faults import RequestFault
from stripe_sandbox.idempotency import IdemEntry

if TYPE_CHECKING:
    from stripe_sandbox.core import Sandbox, Transport

Obj = dict[str, Any]

CONTROL_METHODS = (
    "now",
    "advance",
    "advance_to",
    "complete_3ds",
    "fail_3ds",
    "complete_onboarding",
    "follow_account_link",
    "require_information",
    "deauthorize",
    "open_dispute",
    "close_dispute",
    "fail_payout",
    "fail_requests",
    "fail_fraction",
    "add_latency",
    "timeout_after_apply",
    "clear_faults",
    "duplicate_webhooks",
    "shuffle_webhooks",
    "delay_webhooks",
    "hold_webhooks",
    "release_webhooks",
    "deliver_pending",
    "deliveries",
    "clear_deliveries",
    "get_object",
    "balance",
    "list_events",
    "list_thin_events",
    "save",
)


class ControlMixin:
    def _sb(self) -> Sandbox:
        return cast("Sandbox", self)

    # ---------------------------------------------------------------- customers' actions
    def complete_3ds(self, intent_id: str) -> Obj:
        """Pass the 3-D Secure challenge of a PaymentIntent/SetupIntent in requires_action."""
        from stripe_sandbox.resources.intents import complete_3ds

        sb = self._sb()
        with sb.lock:
            out = complete_3ds(sb, intent_id)
        sb._after_control()
        return out

    def fail_3ds(self, intent_id: str) -> Obj:
        """Fail the challenge: intent back to requires_payment_method with the error recorded."""
        from stripe_sandbox.resources.intents import fail_3ds

        sb = self._sb()
        with sb.lock:
            out = fail_3ds(sb, intent_id)
        sb._after_control()
        return out

    # ---------------------------------------------------------------- Connect
    def complete_onboarding(self, account_id: str) -> Obj:
        """Finish onboarding: requirements cleared, capabilities active, charges/payouts on."""
        from stripe_sandbox.resources.accounts import complete_onboarding

        sb = self._sb()
        with sb.lock:
            out = complete_onboarding(sb, account_id)
        sb._after_control()
        return out

    def follow_account_link(self, url: str, complete: bool = True) -> str:
        """Visit an account link's URL; returns where Stripe would redirect (return/refresh)."""
        from stripe_sandbox.resources.accounts import follow_account_link

        sb = self._sb()
        with sb.lock:
            out = follow_account_link(sb, url, complete)
        sb._after_control()
        return out

    def require_information(
        self,
        account_id: str,
        fields: list[str] | None = None,
        past_due: bool = False,
        deadline: int | None = None,
    ) -> Obj:
        """Make requirements come due again (``past_due=True`` disables charges/payouts now;
        otherwise they become past due at ``deadline``, default 14 days)."""
        from stripe_sandbox.resources.accounts import require_information

        sb = self._sb()
        with sb.lock:
            out = require_information(sb, account_id, fields, past_due, deadline)
        sb._after_control()
        return out

    def deauthorize(self, account_id: str) -> None:
        """The account disconnects the platform (``account.application.deauthorized``)."""
        from stripe_sandbox.resources.accounts import deauthorize

        sb = self._sb()
        with sb.lock:
            deauthorize(sb, account_id)
        sb._after_control()

    # ---------------------------------------------------------------- disputes & payouts
    def open_dispute(
        self, charge_id: str, reason: str = "fraudulent", amount: int | None = None
    ) -> Obj:
        from stripe_sandbox.resources.money import open_dispute

        sb = self._sb()
        with sb.lock:
            out = open_dispute(sb, charge_id, reason, amount)
        sb._after_control()
        return out

    def close_dispute(self, dispute_id: str, outcome: str = "lost") -> Obj:
        """Close a dispute as ``won`` (funds and fee reinstated) or ``lost``."""
        from stripe_sandbox.resources.money import close_dispute

        sb = self._sb()
        with sb.lock:
            out = close_dispute(sb, dispute_id, outcome)
        sb._after_control()
        return out

    def fail_payout(self, payout_id: str, failure_code: str = "account_closed") -> Obj:
        from stripe_sandbox.resources.money import fail_payout

        sb = self._sb()
        with sb.lock:
            out = fail_payout(sb, payout_id, failure_code)
        sb._after_control()
        return out

    # ---------------------------------------------------------------- request faults
    def fail_requests(
        self,
        status: int = 500,
        *,
        nth: int = 1,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Fail the ``nth`` matching request (and the following ``times-1``) with ``status``
        (500 api_error, 429 rate_limit, 409 lock_timeout...). Nothing is applied."""
        sb = self._sb()
        with sb.lock:
            sb.faults.add(
                RequestFault(
                    "error",
                    status=status,
                    nth=nth,
                    remaining=times,
                    method=method,
                    path_prefix=path,
                )
            )

    def fail_fraction(
        self,
        fraction: float,
        status: int = 500,
        *,
        seed: int | None = None,
        method: str | None = None,
        path: str | None = None,
        times: int | None = None,
    ) -> None:
        """Fail a random ``fraction`` of matching requests (seeded RNG)."""
        import random

        sb = self._sb()
        with sb.lock:
            if seed is not None:
                sb.faults.rng = random.Random(seed)
            sb.faults.add(
                RequestFault(
                    "error",
                    status=status,
                    fraction=fraction,
                    remaining=times,
                    method=method,
                    path_prefix=path,
                )
            )

    def add_latency(
        self,
        seconds: float,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int | None = None,
    ) -> RequestFault:
        """Delay matching requests by ``seconds`` of real time (idempotency key stays in flight).
        The rule is returned: its ``seen`` counts the matching requests that have arrived, so a
        test can act while one is being held."""
        sb = self._sb()
        with sb.lock:
            return sb.faults.add(
                RequestFault(
                    "latency", latency=seconds, remaining=times, method=method, path_prefix=path
                )
            )

    def timeout_after_apply(
        self,
        *,
        nth: int = 1,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        hang_seconds: float = 0.0,
    ) -> None:
        """Apply the request, then lose the response: in process the SDK raises
        ``stripe.APIConnectionError``; over HTTP the connection is closed without an answer
        (after ``hang_seconds``)."""
        sb = self._sb()
        with sb.lock:
            sb.faults.add(
                RequestFault(
                    "timeout",
                    nth=nth,
                    remaining=times,
                    method=method,
                    path_prefix=path,
                    hang_seconds=hang_seconds,
                )
            )

    def clear_faults(self) -> None:
        sb = self._sb()
        with sb.lock:
            sb.faults.clear()

    # ---------------------------------------------------------------- webhook faults
    def duplicate_webhooks(self, enabled: bool = True) -> None:
        """Deliver every new event twice."""
        self._sb().faults.webhooks.duplicate = enabled

    def shuffle_webhooks(self, enabled: bool = True) -> None:
        """Deliver each batch of due deliveries in random (seeded) order."""
        self._sb().faults.webhooks.shuffle = enabled

    def delay_webhooks(self, seconds: int) -> None:
        """New deliveries become due ``seconds`` of sandbox time after the event."""
        self._sb().faults.webhooks.delay = int(seconds)

    def hold_webhooks(self) -> None:
        """Deliver nothing until :meth:`release_webhooks`."""
        self._sb().faults.webhooks.held = True

    def release_webhooks(self) -> int:
        sb = self._sb()
        sb.faults.webhooks.held = False
        return sb.deliver_pending()

    def set_webhook_transport(self, transport: Transport) -> None:
        """``transport(url, headers, body_bytes) -> status``; raise to simulate a timeout."""
        self._sb().webhook_transport = transport

    # ---------------------------------------------------------------- reading state
    def deliveries(
        self,
        event_type: str | None = None,
        endpoint_id: str | None = None,
        event_id: str | None = None,
    ) -> list[Obj]:
        """Webhook delivery attempts, oldest first: ``{id, event_id, event_type, endpoint_id,
        url, attempt, status, succeeded, error, delivered_at, headers, body}``."""
        sb = self._sb()
        with sb.lock:
            out = [dict(d) for d in sb.deliveries_log]
        if event_type:
            out = [d for d in out if d["event_type"] == event_type]
        if endpoint_id:
            out = [d for d in out if d["endpoint_id"] == endpoint_id]
        if event_id:
            out = [d for d in out if d["event_id"] == event_id]
        return out

    def clear_deliveries(self) -> None:
        sb = self._sb()
        with sb.lock:
            sb.deliveries_log.clear()

    def get_object(self, obj_id: str) -> Obj | None:
        """Any stored object by id, regardless of account (rendered as the API would)."""
        sb = self._sb()
        with sb.lock:
            obj = sb.objects.get(obj_id)
            return sb.render(obj) if obj is not None else None

    def balance(self, account: str | None = None) -> Obj:
        from stripe_sandbox.resources.money import balance_of

        sb = self._sb()
        with sb.lock:
            return balance_of(sb, account)

    def list_events(self, type: str | None = None, account: str | None = None) -> list[Obj]:
        """Events (oldest first) on the platform or ``account``."""
        sb = self._sb()
        with sb.lock:
            evs = sb.objects_of("event", account)
            evs.reverse()
            return [sb.render(e) for e in evs if type is None or e["type"] == type]

    def list_thin_events(self, type: str | None = None, account: str | None = None) -> list[Obj]:
        """v2 (thin) events (oldest first) on the platform or ``account``, as the API renders
        them (``GET /v2/core/events/{id}``)."""
        sb = self._sb()
        with sb.lock:
            evs = sb.objects_of("v2.core.event", account)
            evs.reverse()
            return [sb.render(e) for e in evs if type is None or e["type"] == type]

    # ---------------------------------------------------------------- persistence
    def save(self, path: str) -> None:
        """Write the whole state as JSON (objects, schedule, pending webhooks, clock)."""
        sb = self._sb()
        with sb.lock:
            state = {
                "version": 1,
                "now": sb.now(),
                "seq": sb._seq,
                "platform_id": sb.platform_id,
                "rng": sb.ids.getstate(),
                "objects": sb.objects,
                "tasks": sb._tasks,
                "deliveries_due": sb._deliveries_due,
                "deliveries_log": sb.deliveries_log,
                "idempotency": [
                    [*slot, e.fingerprint, e.path, e.created, e.status, e.body.decode(), e.headers]
                    for slot, e in sb._idem.items()
                    if not e.in_flight
                ],
            }
            data = json.dumps(state)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(data)

    def load(self, path: str) -> None:
        """Restore state written by :meth:`save` (the clock never moves backwards)."""
        import heapq

        with open(path, encoding="utf-8") as fh:
            state = json.load(fh)
        sb = self._sb()
        with sb.lock:
            sb.objects = state["objects"]
            sb._seq = state["seq"]
            sb.platform_id = state["platform_id"]
            sb._tasks = [(int(t[0]), int(t[1]), str(t[2]), dict(t[3])) for t in state["tasks"]]
            heapq.heapify(sb._tasks)
            sb._deliveries_due = state["deliveries_due"]
            sb.deliveries_log = state["deliveries_log"]
            sb.clock.set(int(state["now"]))
            sb.reindex()
            sb._balance_alerts = {
                f"{t[3].get('account')}|{t[0]}" for t in sb._tasks if t[2] == "balance_available"
            }
            if "rng" in state:
                sb.ids.setstate(state["rng"])
            sb._idem = {}
            for row in state.get("idempotency", []):
                key, acct, idem, fp, path, created, status, body, headers = row
                sb._idem[(key, acct, idem)] = IdemEntry(
                    fp, path, created, False, status, body.encode(), headers
                )
