"""Suite-wide fixtures: API clients, users, the in-process Stripe sandbox, a Celery worker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from gavel.users.models import User

QUEUES = tuple(queue.name for queue in settings.CELERY_TASK_QUEUES)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def _make_user(email: str, **extra: Any) -> User:
    return User.objects.create_user(email=email, password="correct horse battery", **extra)


@pytest.fixture
def make_user(db: None) -> Any:
    return _make_user


@pytest.fixture
def buyer(db: None) -> User:
    return _make_user("buyer@example.com", display_name="Bea Buyer")


@pytest.fixture
def staff_user(db: None) -> User:
    return _make_user("staff@example.com", is_staff=True)


def bearer(user: User) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {RefreshToken.for_user(user).access_token}"}


def database_dsn() -> str:
    """The test database's libpq connection string, for a second connection of a test's own
    (a writer holding a lock, a session looking on) outside Django's."""
    params = connection.get_connection_params()
    return " ".join(
        f"{key}={params[key]}" for key in ("host", "port", "user", "dbname") if params.get(key)
    )


def wait_for(
    predicate: Callable[[], bool],
    *,
    timeout_seconds: float = 20.0,
    failure: str = "condition not met in time",
) -> None:
    """Poll ``predicate`` until it holds (work another thread or process does: a worker, a
    server); AssertionError with ``failure`` when it still does not after the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(failure)
        time.sleep(0.05)


def client_for(user: User | None) -> APIClient:
    """An API client signed in as ``user`` (anonymous for None)."""
    client = APIClient()
    if user is not None:
        client.credentials(**bearer(user))
    return client


@pytest.fixture
def auth_client(buyer: User) -> APIClient:
    client = APIClient()
    client.credentials(**bearer(buyer))
    return client


@pytest.fixture
def sandbox(settings: Any) -> Iterator[Any]:
    """A fresh Stripe sandbox, bound to the gateway for the length of one test."""
    from gavel.gateway.client import client_bind_sandbox
    from stripe_sandbox import Sandbox

    instance = Sandbox(api_keys=[settings.STRIPE_SECRET_KEY])
    client_bind_sandbox(instance.http_client())
    yield instance
    client_bind_sandbox(None)


@pytest.fixture
def celery_worker_thread(transactional_db: None) -> Iterator[Any]:
    """A real Celery worker (solo pool, in a thread) consuming from the configured broker."""
    from celery.contrib.testing.worker import start_worker

    from gavel.celery import app

    with app.connection_for_write() as broker:
        channel: Any = broker.default_channel
        for queue in QUEUES:
            channel.queue_declare(queue=queue, durable=True, auto_delete=False)
            channel.queue_purge(queue)
    with start_worker(
        app,
        pool="solo",
        perform_ping_check=False,
        shutdown_timeout=10,
        queues=list(QUEUES),
    ) as worker:
        yield worker
