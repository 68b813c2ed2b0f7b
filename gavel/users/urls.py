from django.urls import path

from gavel.users.apis import (
    MeApi,
    PasswordResetConfirmApi,
    PasswordResetRequestApi,
    RegisterApi,
    TokenObtainApi,
    TokenRefreshApi,
    UserListApi,
)

urlpatterns = [
    path("auth/register/", RegisterApi.as_view(), name="auth-register"),
    path("auth/token/", TokenObtainApi.as_view(), name="auth-token"),
    path("auth/token/refresh/", TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/password-reset/", PasswordResetRequestApi.as_view(), name="auth-password-reset"),
    path(
        "auth/password-reset/confirm/",
        PasswordResetConfirmApi.as_view(),
        name="auth-password-reset-confirm",
    ),
    path("me/", MeApi.as_view(), name="me"),
    path("users/", UserListApi.as_view(), name="user-list"),
]
