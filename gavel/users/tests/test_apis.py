from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from conftest import bearer
from gavel.common.errors import ServiceError
from gavel.users.models import User
from gavel.users.services import user_register

pytestmark = pytest.mark.django_db


def _error(response: object) -> dict[str, object]:
    body = json.loads(response.content)  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    error: dict[str, object] = body["error"]
    assert set(error) == {"type", "code", "message", "fields", "request_id"}
    assert str(error["request_id"]).startswith("req_")
    return error


def test_register_then_log_in_refresh_and_read_me(api_client: APIClient) -> None:
    response = api_client.post(
        "/api/v1/auth/register/",
        {"email": "New@Example.com", "password": "a long enough passphrase", "display_name": "N"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["email"] == "new@example.com"
    assert response.json()["roles"] == ["buyer"]

    tokens = api_client.post(
        "/api/v1/auth/token/",
        {"email": "new@example.com", "password": "a long enough passphrase"},
        format="json",
    )
    assert tokens.status_code == 200
    refreshed = api_client.post(
        "/api/v1/auth/token/refresh/", {"refresh": tokens.json()["refresh"]}, format="json"
    )
    assert refreshed.status_code == 200

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed.json()['access']}")
    me = api_client.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["email"] == "new@example.com"


def test_register_duplicate_email_is_a_conflict_and_writes_nothing(
    api_client: APIClient, buyer: User
) -> None:
    response = api_client.post(
        "/api/v1/auth/register/",
        {"email": "BUYER@example.com", "password": "a long enough passphrase"},
        format="json",
    )
    assert response.status_code == 409
    assert _error(response)["code"] == "email_taken"
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"email": "a@example.com", "password": ', "non_field_errors"),
        ('{"email": 5, "password": ["x"]}', "password"),
        ('{"password": "a long enough passphrase"}', "email"),
        ('{"email": "a@example.com", "password": "a long enough passphrase", "admin": 1}', "admin"),
        ('{"email": "not-an-email", "password": "a long enough passphrase"}', "email"),
        ('["a list"]', "non_field_errors"),
    ],
)
def test_bad_input_is_a_400_in_the_error_format_and_writes_nothing(
    api_client: APIClient, body: str, field: str
) -> None:
    response = api_client.post("/api/v1/auth/register/", body, content_type="application/json")
    assert response.status_code == 400
    error = _error(response)
    assert error["type"] == "invalid_request_error"
    if field != "non_field_errors" or error["code"] != "parse_error":
        assert field in error["fields"]  # type: ignore[operator]
    assert User.objects.count() == 0


def test_weak_password_is_refused(api_client: APIClient) -> None:
    response = api_client.post(
        "/api/v1/auth/register/", {"email": "a@example.com", "password": "123"}, format="json"
    )
    assert response.status_code == 400
    assert _error(response)["code"] == "weak_password"
    assert User.objects.count() == 0


def test_unsupported_media_type_is_a_415_in_the_error_format(api_client: APIClient) -> None:
    response = api_client.post(
        "/api/v1/auth/register/", "email=a", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert _error(response)["type"] == "invalid_request_error"


def test_no_token_is_401_and_bad_token_is_401(api_client: APIClient) -> None:
    assert _error(api_client.get("/api/v1/me/"))["type"] == "authentication_error"
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    response = api_client.get("/api/v1/me/")
    assert response.status_code == 401
    assert _error(response)["type"] == "authentication_error"


def test_user_list_is_staff_only(api_client: APIClient, buyer: User, staff_user: User) -> None:
    api_client.credentials(**bearer(buyer))
    denied = api_client.get("/api/v1/users/")
    assert denied.status_code == 403
    assert _error(denied)["type"] == "permission_error"
    api_client.credentials(**bearer(staff_user))
    allowed = api_client.get("/api/v1/users/")
    assert allowed.status_code == 200
    assert [row["email"] for row in allowed.json()["results"]] == [
        "staff@example.com",
        "buyer@example.com",
    ]


def test_unknown_route_and_wrong_method_answer_in_the_error_format(
    auth_client: APIClient,
) -> None:
    missing = auth_client.get("/api/v1/nothing-here/")
    assert missing.status_code == 404
    assert _error(missing)["code"] == "not_found"
    wrong = auth_client.delete("/api/v1/me/")
    assert wrong.status_code == 405
    assert _error(wrong)["code"] == "method_not_allowed"


def test_request_id_is_echoed_or_made(api_client: APIClient) -> None:
    given = api_client.get("/healthz", HTTP_X_REQUEST_ID="client-trace-0001")
    assert given["X-Request-ID"] == "client-trace-0001"
    made = api_client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")
    assert made["X-Request-ID"].startswith("req_")


def test_openapi_schema_is_served(api_client: APIClient) -> None:
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/auth/register/" in schema["paths"]


def test_browsable_docs_are_served_without_a_cdn(api_client: APIClient) -> None:
    response = api_client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    assert "cdn.jsdelivr" not in page


def test_an_email_longer_than_the_username_column_is_a_400_and_writes_nothing(
    api_client: APIClient,
) -> None:
    longest = "a" * 138 + "@example.com"  # 150 characters: registers
    too_long = "a" * 139 + "@example.com"  # 151: a valid email, but longer than the 150 kept
    response = api_client.post(
        "/api/v1/auth/register/",
        {"email": too_long, "password": "a long enough passphrase"},
        format="json",
    )
    assert response.status_code == 400
    error = _error(response)
    assert (error["code"], error["fields"]) == (
        "invalid",
        {"email": ["An email of at most 150 characters is required."]},
    )
    assert User.objects.count() == 0
    response = api_client.post(
        "/api/v1/auth/register/",
        {"email": longest, "password": "a long enough passphrase"},
        format="json",
    )
    assert (response.status_code, response.json()["email"]) == (201, longest)


def test_an_email_lowercasing_makes_too_long_is_refused_by_the_service() -> None:
    email = "a" * 138 + "@ex\u0130mple.com"  # 150 characters, 151 once lower-cased
    with pytest.raises(ServiceError) as raised:
        user_register(email=email, password="a long enough passphrase")
    assert (raised.value.code, raised.value.fields) == (
        "invalid",
        {"email": ["An email of at most 150 characters is required."]},
    )
    assert User.objects.count() == 0


def test_log_in_with_the_email_as_registered_in_any_case(api_client: APIClient) -> None:
    password = "a long enough passphrase"
    response = api_client.post(
        "/api/v1/auth/register/", {"email": "Ann@Example.com", "password": password}, format="json"
    )
    assert (response.status_code, response.json()["email"]) == (201, "ann@example.com")
    for typed in ("Ann@Example.com", "ann@example.com", "ANN@EXAMPLE.COM"):
        tokens = api_client.post(
            "/api/v1/auth/token/", {"email": typed, "password": password}, format="json"
        )
        assert (tokens.status_code, sorted(tokens.json())) == (200, ["access", "refresh"]), typed
    wrong = api_client.post(
        "/api/v1/auth/token/", {"email": "Ann@Example.com", "password": "not it"}, format="json"
    )
    assert wrong.status_code == 401
    assert User.objects.get().email == "ann@example.com"
