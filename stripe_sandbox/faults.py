"""Fault injection: failing, slow and "applied but timed out" requests; webhook mischief."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["error", "latency", "timeout"]


@dataclass
class RequestFault:
    kind: FaultKind
    status: int = 500
    nth: int | None = None
    fraction: float | None = None
    method: str | None = None
    path_prefix: str | None = None
    latency: float = 0.0
    hang_seconds: float = 0.0
    remaining: int | None = 1
    seen: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not (self.path_prefix and not path.startswith(self.path_prefix))


@dataclass
class FaultDecision:
    error_status: int | None = None
    latency: float = 0.0
    timeout: bool = False
    hang_seconds: float = 0.0


@dataclass
class WebhookFaults:
    duplicate: bool = False
    shuffle: bool = False
    delay: int = 0
    held: bool = False


@dataclass
class FaultSet:
    seed: int = 0
    rules: list[RequestFault] = field(default_factory=list)
    webhooks: WebhookFaults = field(default_factory=WebhookFaults)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def add(self, rule: RequestFault) -> RequestFault:
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()
        self.webhooks = WebhookFaults()

    def decide(self, method: str, path: str) -> FaultDecision:
        decision = FaultDecision()
        for rule in list(self.rules):
            if not rule.matches(method, path):
                continue
            if rule.remaining is not None and rule.remaining <= 0:
                continue
            rule.seen += 1
            fire = False
            if rule.nth is not None:
                fire = rule.seen >= rule.nth
            elif rule.fraction is not None:
                fire = self.rng.random() < rule.fraction
            else:
                fire = True
            if not fire:
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
            if rule.kind == "error" and decision.error_status is None:
                decision.error_status = rule.status
            elif rule.kind == "latency":
                decision.latency += rule.latency
            elif rule.kind == "timeout":
                decision.timeout = True
                decision.hang_seconds = max(decision.hang_seconds, rule.hang_seconds)
        self.rules = [r for r in self.rules if r.remaining is None or r.remaining > 0]
        return decision
