"""The base view every Gavel API view derives from."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponseBase
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gavel.common.idempotency import (
    IdempotencyReplay,
    idempotency_begin,
    idempotency_finish,
    idempotency_replay_response,
)
from gavel.common.models import IdempotencyKey
from gavel.users.models import User


def request_user(request: Request) -> User:
    """The signed-in user of a request that the view's permissions let through."""
    user = request.user
    assert isinstance(user, User), "the view's permission classes must require sign-in"
    return user


class GavelAPIView(APIView):
    """An APIView that honours ``Idempotency-Key`` on unsafe methods.

    Views keep to the styleguide: a nested input serializer, an output serializer and one
    service call; no business logic here.
    """

    _idempotency_record: IdempotencyKey | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # The raw body is read before DRF parses it, so the fingerprint covers the exact bytes.
        self._idempotency_record = idempotency_begin(request=request, body=request.body)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, IdempotencyReplay):
            return idempotency_replay_response(exc.record)
        return super().handle_exception(exc)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            # An unhandled exception (a 500) never reached finalize_response: free the key so
            # the client's retry runs again, as Stripe does after a server error.
            record = self._idempotency_record
            if record is not None:
                self._idempotency_record = None
                IdempotencyKey.objects.filter(pk=record.pk).delete()

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        finalized = super().finalize_response(request, response, *args, **kwargs)
        record = self._idempotency_record
        if record is not None:
            self._idempotency_record = None
            idempotency_finish(record=record, response=finalized)
        return finalized
