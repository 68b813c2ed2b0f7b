"""Rules every API endpoint keeps, checked by walking the URL configuration.

* every /api/v1/ view derives from GavelAPIView, so ``Idempotency-Key`` is honoured on every
  unsafe method (the JWT token views are the documented exception: docs/adr/0002);
* an anonymous request to any endpoint not explicitly public is refused with 401 in the error
  format, before any input is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.permissions import AllowAny, IsAuthenticatedOrReadOnly
from rest_framework.test import APIClient
from rest_framework.views import APIView

from gavel.common.api import GavelAPIView

TOKEN_VIEWS = {"TokenObtainApi", "TokenRefreshApi"}


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, type[APIView]]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "view_class", None)
            if view_class is not None and issubclass(view_class, APIView):
                yield prefix + str(pattern.pattern), view_class


def _api_views() -> list[tuple[str, type[APIView]]]:
    return [
        (route, view)
        for route, view in _walk(get_resolver().url_patterns)
        if route.startswith("api/v1/")
    ]


def _concrete(route: str) -> str:
    """A request path for a route: converters get a plausible value."""
    import re

    path = re.sub(r"<int:[^>]+>", "1", route)
    path = re.sub(r"<uuid:[^>]+>", "00000000-0000-0000-0000-000000000001", path)
    path = re.sub(r"<(?:str|slug|path):[^>]+>|<[^>]+>", "x", path)
    return "/" + path


def test_there_are_api_views_to_check() -> None:
    assert len(_api_views()) >= 5


def test_every_api_view_honours_idempotency_keys() -> None:
    offenders = [
        f"{route} {view.__name__}"
        for route, view in _api_views()
        if not issubclass(view, GavelAPIView) and view.__name__ not in TOKEN_VIEWS
    ]
    assert offenders == []


def _public_methods(view: type[APIView]) -> set[str]:
    permissions = set(view.permission_classes)
    if not permissions or AllowAny in permissions:
        return {"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"}
    if IsAuthenticatedOrReadOnly in permissions:
        return {"GET", "HEAD", "OPTIONS"}
    return {"OPTIONS"}


@pytest.mark.django_db
def test_anonymous_requests_are_refused_unless_the_endpoint_is_public() -> None:
    client = APIClient()
    checked = 0
    failures = []
    for route, view in _api_views():
        path = _concrete(route)
        for method in ("get", "post", "put", "patch", "delete"):
            if not hasattr(view, method) or method.upper() in _public_methods(view):
                continue
            response = getattr(client, method)(path, {}, format="json")
            checked += 1
            body = (
                response.json()
                if response.get("Content-Type", "").startswith("application/json")
                else {}
            )
            if response.status_code != 401 or body.get("error", {}).get("type") != (
                "authentication_error"
            ):
                failures.append(f"{method.upper()} {path} -> {response.status_code}")
    assert failures == []
    assert checked >= 5


def test_openapi_schema_is_valid_and_generates_without_warnings(tmp_path: Any) -> None:
    """The React Native and Next.js clients generate their API code from this schema."""
    from django.core.management import call_command

    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = target.read_text()
    assert schema.count("operationId:") >= 40
    assert "/api/v1/payment-methods/setup/" in schema
