"""Idempotency-Key on unsafe endpoints, with real concurrent requests against PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import bearer
from gavel.common.idempotency import idempotency_keys_purge, request_fingerprint
from gavel.common.models import IdempotencyKey
from gavel.users.models import User

REGISTER = "/api/v1/auth/register/"


def _body(email: str) -> dict[str, str]:
    return {"email": email, "password": "a long enough passphrase"}


@pytest.mark.django_db
def test_same_key_same_body_replays_the_first_response(api_client: APIClient) -> None:
    first = api_client.post(
        REGISTER, _body("a@example.com"), format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    again = api_client.post(
        REGISTER, _body("a@example.com"), format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert first.status_code == 201
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_same_key_different_body_is_422_and_writes_nothing(api_client: APIClient) -> None:
    api_client.post(REGISTER, _body("a@example.com"), format="json", HTTP_IDEMPOTENCY_KEY="k2")
    reused = api_client.post(
        REGISTER, _body("b@example.com"), format="json", HTTP_IDEMPOTENCY_KEY="k2"
    )
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert list(User.objects.values_list("email", flat=True)) == ["a@example.com"]


@pytest.mark.django_db
def test_a_4xx_answer_is_replayed_too(api_client: APIClient) -> None:
    bad = {"email": "not-an-email", "password": "a long enough passphrase"}
    first = api_client.post(REGISTER, bad, format="json", HTTP_IDEMPOTENCY_KEY="k3")
    again = api_client.post(REGISTER, bad, format="json", HTTP_IDEMPOTENCY_KEY="k3")
    assert first.status_code == again.status_code == 400
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["error"]["fields"] == first.json()["error"]["fields"]


@pytest.mark.django_db
def test_keys_are_scoped_per_user(api_client: APIClient, buyer: User) -> None:
    anonymous = api_client.post(
        REGISTER, _body("a@example.com"), format="json", HTTP_IDEMPOTENCY_KEY="shared"
    )
    signed_in = APIClient()
    signed_in.credentials(**bearer(buyer))
    mine = signed_in.post(
        REGISTER, _body("b@example.com"), format="json", HTTP_IDEMPOTENCY_KEY="shared"
    )
    assert anonymous.status_code == mine.status_code == 201
    assert sorted(IdempotencyKey.objects.values_list("scope", flat=True)) == [
        "anonymous",
        f"user:{buyer.pk}",
    ]


@pytest.mark.django_db
def test_expired_key_runs_the_request_again(api_client: APIClient) -> None:
    api_client.post(REGISTER, _body("a@example.com"), format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    fresh = api_client.post(
        REGISTER, _body("c@example.com"), format="json", HTTP_IDEMPOTENCY_KEY="old"
    )
    assert fresh.status_code == 201
    assert "Idempotent-Replayed" not in fresh
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_keys_purge() == 1


@pytest.mark.django_db
def test_overlong_key_is_refused(api_client: APIClient) -> None:
    response = api_client.post(
        REGISTER, _body("a@example.com"), format="json", HTTP_IDEMPOTENCY_KEY="x" * 256
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_invalid"
    assert User.objects.count() == 0


@pytest.mark.django_db
def test_a_request_still_in_flight_gets_409(api_client: APIClient) -> None:
    IdempotencyKey.objects.create(
        scope="anonymous",
        key="busy",
        request_fingerprint=request_fingerprint(
            method="POST", path=REGISTER, body=b'{"email":"a@example.com"}'
        ),
    )
    response = api_client.post(
        REGISTER,
        '{"email":"a@example.com"}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="busy",
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_flight"


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_create_one_user(live_server: Any) -> None:
    """Twelve real HTTP requests at once, one key: one user; each answer a 201 or a 409."""
    url = f"{live_server.url}{REGISTER}"
    barrier = threading.Barrier(12)
    results: list[tuple[int, dict[str, Any], str | None]] = []
    lock = threading.Lock()

    def send() -> None:
        with requests.Session() as session:
            barrier.wait()
            response = session.post(
                url, json=_body("race@example.com"), headers={"Idempotency-Key": "race"}, timeout=30
            )
            with lock:
                results.append(
                    (
                        response.status_code,
                        response.json(),
                        response.headers.get("Idempotent-Replayed"),
                    )
                )

    threads = [threading.Thread(target=send) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert User.objects.filter(email="race@example.com").count() == 1
    statuses = sorted(status for status, _, _ in results)
    assert set(statuses) <= {201, 409}
    created = [body for status, body, replayed in results if status == 201 and replayed is None]
    assert len(created) == 1
    replays = [body for status, body, replayed in results if replayed == "true"]
    assert all(body == created[0] for body in replays)
    in_flight = [body for status, body, _ in results if status == 409]
    assert all(body["error"]["code"] == "idempotency_key_in_flight" for body in in_flight)
    # After the dust settles the key replays the one response.
    final = requests.post(
        url, json=_body("race@example.com"), headers={"Idempotency-Key": "race"}, timeout=30
    )
    assert final.status_code == 201
    assert final.json() == created[0]
    assert final.headers["Idempotent-Replayed"] == "true"
