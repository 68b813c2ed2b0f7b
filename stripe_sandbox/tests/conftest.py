"""Fixtures for the sandbox's own tests (no Django, no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import stripe

from stripe_sandbox import Sandbox

T0 = 1_760_000_000
DAY = 86400


class Hooks:
    """A recording webhook transport."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self.fail_next = 0
        self.raise_timeout = False

    def __call__(self, url: str, headers: dict[str, str], body: bytes) -> int:
        if self.raise_timeout:
            raise TimeoutError("timed out")
        if self.fail_next > 0:
            self.fail_next -= 1
            return 500
        self.received.append(
            {"url": url, "headers": headers, "body": body, "json": json.loads(body)}
        )
        return self.status

    def types(self) -> list[str]:
        return [r["json"]["type"] for r in self.received]


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


@pytest.fixture
def sb(hooks: Hooks) -> Sandbox:
    return Sandbox(api_keys=["sk_test_sandbox"], start_time=T0, webhook_transport=hooks)


@pytest.fixture
def client(sb: Sandbox) -> stripe.StripeClient:
    return sb.client()


def onboarded(sb: Sandbox, client: stripe.StripeClient, acct_type: str = "express") -> Any:
    acct = client.v1.accounts.create(
        params={
            "type": acct_type,
            "country": "US",
            "email": "seller@example.com",
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
        }
    )
    sb.complete_onboarding(acct.id)
    return client.v1.accounts.retrieve(acct.id)


def bt_sum(sb: Sandbox, account: str | None) -> int:
    return sum(o["net"] for o in sb.objects_of("balance_transaction", account))


def balance_total(sb: Sandbox, account: str | None, currency: str = "usd") -> int:
    bal = sb.balance(account)
    total = 0
    for part in ("available", "pending"):
        total += sum(b["amount"] for b in bal[part] if b["currency"] == currency)
    return total


def body_of(err: stripe.StripeError) -> dict[str, Any]:
    """The ``error`` object of an API error's JSON body."""
    body = err.json_body
    assert isinstance(body, dict)
    out = body["error"]
    assert isinstance(out, dict)
    return out
