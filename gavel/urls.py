"""URL configuration: /api/v1/ for the apps, /admin/ for staff, health and metrics."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from gavel.observability.views import healthz, metrics, readyz

api_v1 = [
    path("", include("gavel.users.urls")),
    path("", include("gavel.auctions.urls")),
    path("", include("gavel.connect.urls")),
    path("", include("gavel.payments.urls")),
    path("", include("gavel.payouts.urls")),
    path("", include("gavel.legacy.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("webhooks/", include("gavel.webhooks.urls")),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
]

handler400 = "gavel.common.errors.handler400"
handler403 = "gavel.common.errors.handler403"
handler404 = "gavel.common.errors.handler404"
handler500 = "gavel.common.errors.handler500"
