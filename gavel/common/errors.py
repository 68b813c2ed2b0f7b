"""The one error format for every 4xx and 5xx answer.

{"error": {"type": "invalid_request_error", "code": "invalid", "message": "...",
           "fields": {"amount": ["..."]}, "request_id": "req_..."}}
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from gavel.common.context import request_id_current

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A business rule refused the request; rendered as a 4xx in the error format."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    error_type = "invalid_request_error"
    code = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict[str, list[str]] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.fields = fields or {}


class ConflictError(ServiceError):
    status_code: int = status.HTTP_409_CONFLICT
    error_type = "conflict_error"
    code = "conflict"


class NotFoundError(ServiceError):
    status_code: int = status.HTTP_404_NOT_FOUND
    error_type = "not_found_error"
    code = "not_found"


def error_body(
    *, error_type: str, code: str, message: str, fields: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "type": error_type,
            "code": code,
            "message": message,
            "fields": fields or {},
            "request_id": request_id_current(),
        }
    }


_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    406: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "idempotency_error",
    429: "rate_limit_error",
}


def _flatten_fields(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            fields.update(_flatten_fields(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            fields[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                fields.update(_flatten_fields(item, f"{prefix}[{index}]"))
    else:
        fields[prefix or "non_field_errors"] = [str(detail)]
    return fields


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler producing the one error format."""
    if isinstance(exc, ServiceError):
        return Response(
            error_body(
                error_type=exc.error_type, code=exc.code, message=exc.message, fields=exc.fields
            ),
            status=exc.status_code,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten_fields(exc.detail)
        message = "Invalid request: " + "; ".join(
            f"{name}: {' '.join(messages)}" for name, messages in fields.items()
        )
        code = "invalid"
    else:
        fields = {}
        message = (
            str(exc.detail) if not isinstance(exc.detail, (dict, list)) else str(exc.default_detail)
        )
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
    response.data = error_body(
        error_type=_TYPE_BY_STATUS.get(response.status_code, "api_error"),
        code=str(code),
        message=str(message),
        fields=fields,
    )
    return response


def json_error_response(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(
        error_body(
            error_type=_TYPE_BY_STATUS.get(status_code, "api_error"), code=code, message=message
        ),
        status=status_code,
    )


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error_response(400, "bad_request", "Bad request.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error_response(403, "permission_denied", "Permission denied.")


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error_response(404, "not_found", "Not found.")


def handler500(request: HttpRequest) -> JsonResponse:
    return json_error_response(500, "internal_error", "Internal server error.")
