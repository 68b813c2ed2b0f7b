"""Registration, tokens, password reset and "me"."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from gavel.common.api import GavelAPIView, request_user
from gavel.common.pagination import CursorPagination
from gavel.common.serializers import StrictSerializer
from gavel.users.models import User
from gavel.users.permissions import IsStaff
from gavel.users.selectors import user_list
from gavel.users.services import (
    EMAIL_MAX_LENGTH,
    EMAIL_TOO_LONG,
    password_reset_confirm,
    password_reset_request,
    user_register,
)


class UserOutputSerializer(serializers.ModelSerializer[User]):
    roles = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = User
        fields = ("id", "email", "display_name", "roles", "date_joined")
        read_only_fields = fields


class RegisterApi(GavelAPIView):
    permission_classes = (AllowAny,)

    class InputSerializer(StrictSerializer):
        email = serializers.EmailField(
            max_length=EMAIL_MAX_LENGTH, error_messages={"max_length": EMAIL_TOO_LONG}
        )
        password = serializers.CharField(max_length=128, write_only=True)
        display_name = serializers.CharField(max_length=150, required=False, default="")

    @extend_schema(request=InputSerializer, responses={201: UserOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_register(**serializer.validated_data)
        return Response(UserOutputSerializer(user).data, status=status.HTTP_201_CREATED)


class DetailSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()


RESET_REQUESTED = "If an account uses this email, a link to set its password is on its way."


class PasswordResetRequestApi(GavelAPIView):
    """Email a link to set a password (forgotten, or never set: members imported from the
    legacy portal). The answer is the same whether or not the email has an account."""

    permission_classes = (AllowAny,)

    class InputSerializer(StrictSerializer):
        email = serializers.EmailField(max_length=254)

    @extend_schema(request=InputSerializer, responses={202: DetailSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        password_reset_request(**serializer.validated_data)
        return Response({"detail": RESET_REQUESTED}, status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmApi(GavelAPIView):
    """Set the new password with the uid and token from the emailed link."""

    permission_classes = (AllowAny,)

    class InputSerializer(StrictSerializer):
        uid = serializers.CharField(max_length=64)
        token = serializers.CharField(max_length=128)
        new_password = serializers.CharField(max_length=128, write_only=True)

    @extend_schema(request=InputSerializer, responses={200: UserOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = password_reset_confirm(**serializer.validated_data)
        return Response(UserOutputSerializer(user).data)


class MeApi(GavelAPIView):
    @extend_schema(responses={200: UserOutputSerializer})
    def get(self, request: Request) -> Response:
        return Response(UserOutputSerializer(request_user(request)).data)


class UserListApi(GavelAPIView):
    """Staff only: every member, newest first."""

    permission_classes = (IsStaff,)

    @extend_schema(responses={200: UserOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        paginator = CursorPagination()
        page = paginator.paginate_queryset(user_list(), request, view=self)
        assert page is not None
        return paginator.get_paginated_response(UserOutputSerializer(page, many=True).data)


class _StrictTokenMixin:
    """simplejwt views with the strict unknown-field rule of every other endpoint."""

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        allowed = set(self.get_serializer().fields)  # type: ignore[attr-defined]
        if isinstance(request.data, dict):
            unknown = sorted(set(request.data) - allowed)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        response: Response = super().post(request, *args, **kwargs)  # type: ignore[misc]
        return response


class TokenObtainApi(_StrictTokenMixin, TokenObtainPairView):
    pass


class TokenRefreshApi(_StrictTokenMixin, TokenRefreshView):
    pass
