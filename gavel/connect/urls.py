from django.urls import path

from gavel.connect.apis import (
    AccountDetailApi,
    AccountRefreshApi,
    AccountSessionCreateApi,
    DashboardLinkCreateApi,
    OnboardingLinkCreateApi,
    OnboardingStartApi,
    StaffAccountDetailApi,
    StaffAccountListApi,
    StaffAccountRefreshApi,
)

urlpatterns = [
    path("connect/onboarding/", OnboardingStartApi.as_view(), name="connect-onboarding-start"),
    path("connect/account/", AccountDetailApi.as_view(), name="connect-account"),
    path("connect/account/refresh/", AccountRefreshApi.as_view(), name="connect-account-refresh"),
    path(
        "connect/account/onboarding-links/",
        OnboardingLinkCreateApi.as_view(),
        name="connect-onboarding-link",
    ),
    path("connect/account/sessions/", AccountSessionCreateApi.as_view(), name="connect-session"),
    path(
        "connect/account/dashboard-links/",
        DashboardLinkCreateApi.as_view(),
        name="connect-dashboard-link",
    ),
    path("connect/accounts/", StaffAccountListApi.as_view(), name="connect-staff-accounts"),
    path(
        "connect/accounts/<int:account_id>/",
        StaffAccountDetailApi.as_view(),
        name="connect-staff-account",
    ),
    path(
        "connect/accounts/<int:account_id>/refresh/",
        StaffAccountRefreshApi.as_view(),
        name="connect-staff-account-refresh",
    ),
]
