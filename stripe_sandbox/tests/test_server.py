"""The standalone server on 127.0.0.1 (ephemeral port), driven by the SDK and control HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe

from stripe_sandbox import Sandbox
from stripe_sandbox.server import SandboxServer

from .conftest import T0


def _control(url: str, name: str, **kwargs: Any) -> Any:
    req = urllib.request.Request(  # noqa: S310 - local test server
        f"{url}/_sandbox/{name}",
        data=json.dumps(kwargs).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - local test server
        return json.loads(resp.read())["result"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SandboxServer]:
    sb = Sandbox(start_time=T0, webhook_mode="background")
    srv = SandboxServer(sb, "127.0.0.1", 0, state_file=str(tmp_path / "state.json")).start()
    yield srv
    srv.stop()


def test_http_server_end_to_end(server: SandboxServer, tmp_path: Path) -> None:
    client: Any = stripe.StripeClient(
        "sk_test_sandbox",
        base_addresses={"api": server.url},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=2),
    )
    cus = client.v1.customers.create(params={"email": "http@x.test", "metadata": {"a": "1"}})
    assert client.v1.customers.retrieve(cus.id).email == "http@x.test"
    with pytest.raises(stripe.InvalidRequestError) as e:
        client.v1.customers.create(params={"bogus": "1"})
    assert e.value.param == "bogus"

    pi = client.v1.payment_intents.create(
        params={
            "amount": 2000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    assert pi.status == "succeeded"
    assert _control(server.url, "advance", seconds=2 * 86400) == T0 + 2 * 86400
    assert client.v1.balance.retrieve().available[0].amount == 2000 - 88

    # the unknown-outcome fault over HTTP: applied, then the connection is dropped
    _control(server.url, "timeout_after_apply", path="/v1/customers")
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.create(params={"email": "lost@x.test"})
    emails = {c.email for c in client.v1.customers.list().data}
    assert "lost@x.test" in emails

    # account link visited in a browser: onboarding completes, redirect to return_url
    acct = client.v1.accounts.create(
        params={"type": "express", "capabilities": {"transfers": {"requested": True}}}
    )
    link = client.v1.account_links.create(
        params={
            "account": acct.id,
            "type": "account_onboarding",
            "refresh_url": "https://app.test/r",
            "return_url": "https://app.test/done",
        }
    )
    path = link.url.split("/_sandbox/", 1)[1]

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(f"{server.url}/_sandbox/{path}", timeout=5)
    assert redirect.value.code == 302
    assert redirect.value.headers["Location"] == "https://app.test/done"
    assert client.v1.accounts.retrieve(acct.id).charges_enabled is True

    # bad control calls are reported, not crashing the server
    with pytest.raises(urllib.error.HTTPError) as bad:
        _control(server.url, "complete_3ds", intent_id="pi_missing")
    assert bad.value.code == 400

    # state survives a restart through the state file
    server.persist()
    again = Sandbox(webhook_mode="background")
    again.load(str(tmp_path / "state.json"))
    assert again.get_object(cus.id) is not None
    assert again.now() >= T0 + 2 * 86400


def test_server_webhooks_delivered_in_background(server: SandboxServer) -> None:
    got: list[bytes] = []

    def transport(url: str, headers: dict[str, str], body: bytes) -> int:
        got.append(body)
        return 200

    server.sandbox.set_webhook_transport(transport)
    client: Any = stripe.StripeClient(
        "sk_test_sandbox", base_addresses={"api": server.url}, max_network_retries=0
    )
    client.v1.webhook_endpoints.create(
        params={"url": "http://127.0.0.1:1/hook", "enabled_events": ["customer.created"]}
    )
    client.v1.customers.create()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    assert got
    assert json.loads(got[0])["type"] == "customer.created"


def test_server_3ds_page_and_control_routes(server: SandboxServer) -> None:
    client: Any = stripe.StripeClient(
        "sk_test_sandbox", base_addresses={"api": server.url}, max_network_retries=0
    )
    pi = client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "confirm": True,
            "payment_method": "pm_card_authenticationRequired",
            "return_url": "https://shop.test/back",
        }
    )
    url = pi.next_action.redirect_to_url.url
    assert url.startswith(server.sandbox.base_url)
    page_url = f"{server.url}/_sandbox/{url.split('/_sandbox/', 1)[1]}"
    with urllib.request.urlopen(page_url, timeout=5) as resp:  # noqa: S310
        assert b"3-D Secure" in resp.read()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(f"{page_url}?result=success", timeout=5)
    assert redirect.value.headers["Location"] == f"https://shop.test/back?payment_intent={pi.id}"
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    si = client.v1.setup_intents.create(
        params={"payment_method": "pm_card_authenticationRequired", "confirm": True}
    )
    with urllib.request.urlopen(  # noqa: S310
        f"{server.url}/_sandbox/3ds/{si.id}?result=fail", timeout=5
    ) as resp:
        assert json.loads(resp.read())["status"] == "requires_payment_method"
    with urllib.request.urlopen(f"{server.url}/_sandbox/deliveries", timeout=5) as resp:  # noqa: S310
        assert json.loads(resp.read())["result"] == []
    with pytest.raises(urllib.error.HTTPError) as missing:
        _control(server.url, "no_such_method")
    assert missing.value.code == 404
    assert _control(server.url, "now") == server.sandbox.now()


def test_server_thin_events_over_http_and_after_a_restart(
    server: SandboxServer, tmp_path: Path
) -> None:
    got: list[bytes] = []

    def transport(url: str, headers: dict[str, str], body: bytes) -> int:
        got.append(body)
        return 200

    server.sandbox.set_webhook_transport(transport)
    client: Any = stripe.StripeClient(
        "sk_test_sandbox",
        base_addresses={"api": server.url},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=2),
    )
    destination = client.v2.core.event_destinations.create(
        params={
            "name": "http",
            "type": "webhook_endpoint",
            "event_payload": "thin",
            "enabled_events": ["v1.customer.created"],
            "webhook_endpoint": {"url": "http://127.0.0.1:1/thin"},
        }
    )
    customer = client.v1.customers.create()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    [notification] = [json.loads(body) for body in got]
    assert notification["related_object"]["id"] == customer.id
    listed = client.v2.core.events.list(params={"types": ["v1.customer.created"]})
    assert [event.id for event in listed.data] == [notification["id"]]

    server.persist()
    again = Sandbox(webhook_mode="queued")
    again.load(str(tmp_path / "state.json"))
    again_client = again.client()
    assert again_client.v2.core.events.retrieve(notification["id"]).type == "v1.customer.created"
    assert again_client.v2.core.event_destinations.retrieve(destination.id).status == "enabled"
