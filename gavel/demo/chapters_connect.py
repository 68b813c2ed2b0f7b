"""Demo chapter: a seller onboards on Stripe Connect through the sandbox."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings

from gavel.connect.webhook_handlers import ACCOUNT_STATE_EVENTS
from gavel.gateway.webhooks import signature_header

if TYPE_CHECKING:
    from gavel.demo.story import StoryContext

# How long the story waits for Stripe's webhook to be applied before the app's own refresh.
WAIT_SECONDS = 5.0


def _deliver_to_gavel(context: StoryContext) -> None:
    """Point the sandbox's Connect webhooks at Gavel's endpoint, in process, signed with the
    secret Gavel is configured with (as a real Stripe endpoint would be)."""
    sandbox = context.sandbox
    if any(
        getattr(ep, "url", "").endswith("/webhooks/stripe/connect/") for ep in _endpoints(context)
    ):
        return
    sandbox.client(settings.STRIPE_SECRET_KEY).v1.webhook_endpoints.create(
        params={
            "url": "http://127.0.0.1:8000/webhooks/stripe/connect/",
            "enabled_events": [*ACCOUNT_STATE_EVENTS, "account.application.deauthorized"],
            "connect": True,
        }
    )

    def transport(url: str, headers: dict[str, str], body: bytes) -> int:
        path = urlsplit(url).path
        secret = (
            settings.STRIPE_CONNECT_WEBHOOK_SECRETS[0]
            if path.endswith("/connect/")
            else settings.STRIPE_WEBHOOK_SECRETS[0]
        )
        response = context.client.post(
            path,
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signature_header(
                payload=body, secret=secret, timestamp=int(time.time())
            ),
        )
        return int(response.status_code)

    sandbox.set_webhook_transport(transport)


def _endpoints(context: StoryContext) -> list[Any]:
    client = context.sandbox.client(settings.STRIPE_SECRET_KEY)
    return list(client.v1.webhook_endpoints.list().data)


def _wait_for(context: StoryContext, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The account once ``predicate`` holds: applied from Stripe's webhook if the pipeline
    gets there in time, otherwise re-read by the app's refresh call (narrated either way)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        account: dict[str, Any] = context.api("GET", "/api/v1/connect/account/", as_user="ada")
        if predicate(account):
            context.narrator.detail("Applied from Stripe's webhook (account.updated).")
            return account
        time.sleep(0.1)
    context.narrator.detail(
        "The webhook was not applied in time; the app's refresh re-read the account instead."
    )
    refreshed: dict[str, Any] = context.api(
        "POST", "/api/v1/connect/account/refresh/", as_user="ada"
    )
    return refreshed


def chapter_seller_onboarding(context: StoryContext) -> None:
    narrator = context.narrator
    narrator.chapter("Ada becomes a seller on Stripe Connect")
    _deliver_to_gavel(context)

    started = context.api("POST", "/api/v1/connect/onboarding/", as_user="ada", expect=201)
    account = started["account"]
    acct = account["stripe_account_id"]
    narrator.step(
        f"Ada taps “Become a seller”: Gavel creates Stripe account {acct} "
        f"({account['preset']} preset, v1 Accounts API, controller properties)."
    )
    narrator.detail(f"Gavel tells her: {account['selling']['message']}")
    again = context.api("POST", "/api/v1/connect/onboarding/", as_user="ada")
    narrator.step(
        "Her thumb taps twice: the second request finds the same account "
        f"({again['account']['stripe_account_id']}), not a new one."
    )

    landed = context.sandbox.follow_account_link(started["onboarding_link"]["url"])
    narrator.step(f"She finishes Stripe's hosted onboarding and lands back on {landed}.")
    account = _wait_for(context, lambda body: body["selling"]["can_list"])
    narrator.step(
        f"Card payments are {account['capabilities'].get('card_payments')} and transfers "
        f"{account['capabilities'].get('transfers')}: Ada may list "
        f"(can_list={account['selling']['can_list']})."
    )
    session = context.api("POST", "/api/v1/connect/account/sessions/", as_user="ada", expect=201)
    narrator.detail(
        f"The app can also embed Stripe's components with a session secret "
        f"(expires {session['expires_at']}), and open her Express Dashboard:"
    )
    dashboard = context.api(
        "POST", "/api/v1/connect/account/dashboard-links/", as_user="ada", expect=201
    )
    narrator.detail(f"{urlsplit(dashboard['url']).netloc} (a one-time link).")

    context.sandbox.require_information(acct, ["individual.verification.document"], past_due=True)
    account = _wait_for(context, lambda body: not body["selling"]["can_list"])
    narrator.step(
        "Stripe now needs Ada's ID and it is overdue: listing is refused with "
        f"“{account['selling']['message']}”"
    )
    link = context.api(
        "POST", "/api/v1/connect/account/onboarding-links/", as_user="ada", expect=201
    )
    context.sandbox.follow_account_link(link["url"])
    account = _wait_for(context, lambda body: body["selling"]["can_list"])
    narrator.step(
        "Ada uploads it through a fresh onboarding link: she may list again "
        f"(status {account['status']})."
    )
    context.cast["ada_stripe_account"] = acct
