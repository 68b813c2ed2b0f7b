"""The real path: the sandbox posts its events over HTTP to a live server, a real Celery
worker processes them, and the seller's record follows Stripe."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from conftest import bearer, wait_for
from gavel.connect.models import ConnectedAccount
from gavel.connect.selectors import seller_can_list
from gavel.connect.tests.conftest import ONBOARDING_URL
from gavel.webhooks.models import WebhookEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def all_finished() -> bool:
    events = WebhookEvent.objects.all()
    return events.exists() and not events.filter(status__in=WebhookEvent.UNFINISHED).exists()


def test_onboarding_over_http_with_a_real_worker(
    live_server: Any, celery_worker_thread: Any, sandbox: Any, settings: Any, make_user: Any
) -> None:
    def transport(url: str, headers: dict[str, str], body: bytes) -> int:
        return requests.post(url, data=body, headers=headers, timeout=30).status_code

    sandbox.set_webhook_transport(transport)
    endpoint = sandbox.client().v1.webhook_endpoints.create(
        params={
            "url": f"{live_server.url}/webhooks/stripe/connect/",
            "enabled_events": ["*"],
            "connect": True,
        }
    )
    settings.STRIPE_CONNECT_WEBHOOK_SECRETS = [endpoint.secret]
    seller = make_user("live@example.com")
    headers = {"Authorization": bearer(seller)["HTTP_AUTHORIZATION"]}
    created = requests.post(
        f"{live_server.url}{ONBOARDING_URL}", json={}, headers=headers, timeout=30
    ).json()

    sandbox.follow_account_link(created["onboarding_link"]["url"])
    wait_for(all_finished)

    assert ConnectedAccount.objects.get().status == "enabled"
    assert seller_can_list(user=seller) == (True, "")
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}

    sandbox.advance(60)
    sandbox.require_information(
        created["account"]["stripe_account_id"], ["external_account"], past_due=True
    )
    wait_for(lambda: all_finished() and ConnectedAccount.objects.get().status == "restricted")

    assert seller_can_list(user=seller) == (
        False,
        "Stripe paused selling until you provide: Add the bank account your payouts go to.",
    )
