"""Password reset by emailed link: how imported legacy members (no password) sign in."""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.core import mail
from django.db import connection
from rest_framework.test import APIClient

from conftest import wait_for
from gavel.common.models import OutboxMessage
from gavel.users.models import User
from gavel.users.services import (
    PASSWORD_RESET_EMAIL_TASK,
    password_reset_email_send,
    password_reset_link,
    password_reset_request,
)

NEW_PASSWORD = "a brand new long passphrase"


def _imported_user(email: str = "ines@example.com") -> User:
    """Like the legacy loader makes them: active, no usable password."""
    user = User.objects.create_user(email=email, password=None, legacy_person_id="p_abc")
    assert not user.has_usable_password()
    return user


def _link_params(body: str) -> tuple[str, str]:
    match = re.search(r"https://\S+", body)
    assert match is not None, body
    query = parse_qs(urlparse(match.group(0)).query)
    return query["uid"][0], query["token"][0]


def _reset_queued(user: User) -> int:
    return OutboxMessage.objects.filter(
        task_name=PASSWORD_RESET_EMAIL_TASK, kwargs={"user_id": user.pk}
    ).count()


def _error_code(response: Any) -> str:
    body = response.json()
    assert set(body["error"]) == {"type", "code", "message", "fields", "request_id"}
    return str(body["error"]["code"])


@pytest.mark.django_db(transaction=True)
def test_an_imported_member_sets_a_password_from_the_emailed_link_then_signs_in(
    api_client: APIClient, celery_worker_thread: Any
) -> None:
    user = _imported_user()
    mail.outbox.clear()

    response = api_client.post(
        "/api/v1/auth/password-reset/", {"email": "Ines@Example.com"}, format="json"
    )
    assert response.status_code == 202
    wait_for(lambda: len(mail.outbox) == 1)
    message = mail.outbox[0]
    assert message.to == ["ines@example.com"]
    uid, token = _link_params(str(message.body))

    confirmed = api_client.post(
        "/api/v1/auth/password-reset/confirm/",
        {"uid": uid, "token": token, "new_password": NEW_PASSWORD},
        format="json",
    )
    assert confirmed.status_code == 200
    assert confirmed.json()["email"] == "ines@example.com"
    tokens = api_client.post(
        "/api/v1/auth/token/",
        {"email": "ines@example.com", "password": NEW_PASSWORD},
        format="json",
    )
    assert tokens.status_code == 200

    # The link works once.
    again = api_client.post(
        "/api/v1/auth/password-reset/confirm/",
        {"uid": uid, "token": token, "new_password": "yet another long passphrase"},
        format="json",
    )
    assert again.status_code == 400
    assert _error_code(again) == "invalid_reset_link"
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


@pytest.mark.django_db
def test_an_unknown_or_inactive_email_gets_the_same_answer_and_no_email(
    api_client: APIClient,
) -> None:
    inactive = User.objects.create_user(email="gone@example.com", password=None)
    inactive.is_active = False
    inactive.save()
    answers = [
        api_client.post("/api/v1/auth/password-reset/", {"email": email}, format="json")
        for email in ("nobody@example.com", "gone@example.com")
    ]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json() == answers[1].json()
    assert OutboxMessage.objects.filter(task_name=PASSWORD_RESET_EMAIL_TASK).count() == 0
    assert password_reset_email_send(user_id=inactive.pk) is False


@pytest.mark.django_db
def test_one_email_per_window_then_another_after_it(settings: Any) -> None:
    user = _imported_user()
    assert password_reset_request(email="ines@example.com") is True
    assert password_reset_request(email="ines@example.com") is False
    assert _reset_queued(user) == 1
    settings.PASSWORD_RESET_MIN_INTERVAL_SECONDS = 0
    assert password_reset_request(email="ines@example.com") is True
    assert _reset_queued(user) == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_queue_one_email() -> None:
    user = _imported_user()
    start = threading.Barrier(8)
    results: list[bool] = []

    def request() -> None:
        try:
            start.wait()
            results.append(password_reset_request(email="ines@example.com"))
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert _reset_queued(user) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("uid", "token", "password", "code"),
    [
        ("not-base64!", "x", NEW_PASSWORD, "invalid_reset_link"),
        ("OTk5OTk5", "x", NEW_PASSWORD, "invalid_reset_link"),  # pk 999999: nobody
        (None, "abc-def", NEW_PASSWORD, "invalid_reset_link"),  # forged token
        (None, None, "short", "weak_password"),
    ],
)
def test_a_bad_link_or_weak_password_is_a_400_and_changes_nothing(
    api_client: APIClient, uid: str | None, token: str | None, password: str, code: str
) -> None:
    user = _imported_user()
    good_uid, good_token = _link_params(password_reset_link(user=user))
    response = api_client.post(
        "/api/v1/auth/password-reset/confirm/",
        {"uid": uid or good_uid, "token": token or good_token, "new_password": password},
        format="json",
    )
    assert response.status_code == 400
    assert _error_code(response) == code
    user.refresh_from_db()
    assert not user.has_usable_password()


@pytest.mark.django_db
def test_a_link_dies_when_the_password_changes_another_way(api_client: APIClient) -> None:
    user = _imported_user()
    uid, token = _link_params(password_reset_link(user=user))
    user.set_password("changed by support staff")
    user.save()
    response = api_client.post(
        "/api/v1/auth/password-reset/confirm/",
        {"uid": uid, "token": token, "new_password": NEW_PASSWORD},
        format="json",
    )
    assert response.status_code == 400
    user.refresh_from_db()
    assert user.check_password("changed by support staff")


@pytest.mark.django_db
def test_unknown_fields_are_refused(api_client: APIClient) -> None:
    response = api_client.post(
        "/api/v1/auth/password-reset/",
        {"email": "ines@example.com", "is_staff": True},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"is_staff": ["Unknown field."]}


@pytest.mark.django_db
def test_a_reset_signs_out_every_session_issued_before_it(api_client: APIClient) -> None:
    User.objects.create_user(email="old@example.com", password="the old long passphrase")
    tokens = api_client.post(
        "/api/v1/auth/token/",
        {"email": "old@example.com", "password": "the old long passphrase"},
        format="json",
    ).json()
    user = User.objects.get(email="old@example.com")
    uid, token = _link_params(password_reset_link(user=user))

    confirmed = api_client.post(
        "/api/v1/auth/password-reset/confirm/",
        {"uid": uid, "token": token, "new_password": NEW_PASSWORD},
        format="json",
    )

    assert confirmed.status_code == 200
    refreshed = api_client.post(
        "/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"
    )
    assert refreshed.status_code == 401
    fresh = api_client.post(
        "/api/v1/auth/token/",
        {"email": "old@example.com", "password": NEW_PASSWORD},
        format="json",
    ).json()
    assert (
        api_client.post(
            "/api/v1/auth/token/refresh/", {"refresh": fresh["refresh"]}, format="json"
        ).status_code
        == 200
    )


@pytest.mark.django_db
def test_expired_refresh_tokens_are_flushed_and_live_ones_kept() -> None:
    from datetime import timedelta

    from django.utils import timezone
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
    from rest_framework_simplejwt.tokens import RefreshToken

    from gavel.users.services import sessions_revoke
    from gavel.users.tasks import expired_tokens_flush

    user = User.objects.create_user(email="t@example.com", password=None)
    RefreshToken.for_user(user)
    RefreshToken.for_user(user)
    assert sessions_revoke(user=user) == 2
    live = RefreshToken.for_user(user)
    OutstandingToken._default_manager.exclude(jti=live["jti"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert expired_tokens_flush() == 2

    assert list(OutstandingToken._default_manager.values_list("jti", flat=True)) == [live["jti"]]
    assert BlacklistedToken._default_manager.count() == 0
    assert expired_tokens_flush() == 0
