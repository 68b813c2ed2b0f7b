"""Fixtures of the Connect tests: sellers, and the sandbox delivering its Connect webhooks to
Gavel's real endpoint (in process), with the stored events processed as the worker would."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from conftest import bearer
from gavel.users.models import User
from gavel.webhooks.models import WebhookEvent
from gavel.webhooks.services import event_process

ONBOARDING_URL = "/api/v1/connect/onboarding/"
ACCOUNT_URL = "/api/v1/connect/account/"


@pytest.fixture
def seller(make_user: Callable[..., User]) -> User:
    return make_user("sally@example.com", display_name="Sally Seller")


@pytest.fixture
def seller_client(seller: User) -> APIClient:
    client = APIClient()
    client.credentials(**bearer(seller))
    return client


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.credentials(**bearer(user))
    return client


@dataclass
class ConnectWebhooks:
    """The sandbox's Connect endpoint, pointed at Gavel's /webhooks/stripe/connect/."""

    sandbox: Any
    answers: list[int] = field(default_factory=list)

    def process(self) -> list[str]:
        """Run every stored, unfinished event through the pipeline (what the worker does);
        the statuses, oldest event first."""
        pks = WebhookEvent.objects.filter(status__in=WebhookEvent.UNFINISHED).order_by("id")
        return [event_process(event_pk=pk) for pk in pks.values_list("pk", flat=True)]


@pytest.fixture
def connect_webhooks(sandbox: Any, settings: Any, db: None) -> ConnectWebhooks:
    django_client = Client()
    hooks = ConnectWebhooks(sandbox=sandbox)

    def transport(url: str, headers: dict[str, str], body: bytes) -> int:
        response = django_client.post(
            "/webhooks/stripe/connect/",
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"],
        )
        hooks.answers.append(response.status_code)
        return response.status_code

    sandbox.set_webhook_transport(transport)
    endpoint = sandbox.client(settings.STRIPE_SECRET_KEY).v1.webhook_endpoints.create(
        params={
            "url": "https://gavel.test/webhooks/stripe/connect/",
            "enabled_events": ["*"],
            "connect": True,
        }
    )
    settings.STRIPE_CONNECT_WEBHOOK_SECRETS = [endpoint.secret]
    return hooks
