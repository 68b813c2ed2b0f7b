"""Wrong users on the users API: one member's reset link on another member's account, a
seller on the staff member list."""

from __future__ import annotations

import pytest
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from rest_framework.test import APIClient

from conftest import client_for
from gavel.users.models import User
from gavel.users.services import password_reset_link
from gavel.users.tests.test_password_reset import NEW_PASSWORD, _link_params

pytestmark = pytest.mark.django_db


def test_a_reset_token_does_not_work_on_another_members_account(api_client: APIClient) -> None:
    requester = User.objects.create_user(email="mallory@example.com", password="mallory pass 1")
    victim = User.objects.create_user(email="victim@example.com", password="victim pass 12")
    requester_uid, requester_token = _link_params(password_reset_link(user=requester))
    victim_uid, _ = _link_params(password_reset_link(user=victim))
    assert int(force_str(urlsafe_base64_decode(victim_uid))) == victim.pk
    response = api_client.post(
        "/api/v1/auth/password-reset/confirm/",
        {"uid": victim_uid, "token": requester_token, "new_password": NEW_PASSWORD},
        format="json",
    )
    assert (response.status_code, response.json()["error"]["code"]) == (
        400,
        "invalid_reset_link",
    )
    victim.refresh_from_db()
    requester.refresh_from_db()
    assert victim.check_password("victim pass 12")
    assert requester.check_password("mallory pass 1")
    assert requester_uid != victim_uid


def test_the_member_list_refuses_a_seller() -> None:
    seller = User.objects.create_user(email="s@example.com", password="x" * 12, is_seller=True)
    response = client_for(seller).get("/api/v1/users/")
    assert (response.status_code, response.json()["error"]["type"]) == (403, "permission_error")
