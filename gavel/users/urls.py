from django.urls import path

from gavel.users.apis import MeApi, RegisterApi, TokenObtainApi, TokenRefreshApi, UserListApi

urlpatterns = [
    path("auth/register/", RegisterApi.as_view(), name="auth-register"),
    path("auth/token/", TokenObtainApi.as_view(), name="auth-token"),
    path("auth/token/refresh/", TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("me/", MeApi.as_view(), name="me"),
    path("users/", UserListApi.as_view(), name="user-list"),
]
