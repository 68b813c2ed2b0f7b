from django.urls import path

from gavel.webhooks.views import (
    stripe_connect_webhook,
    stripe_platform_webhook,
    stripe_thin_webhook,
)

urlpatterns = [
    path("stripe/", stripe_platform_webhook, name="webhooks-stripe"),
    path("stripe/connect/", stripe_connect_webhook, name="webhooks-stripe-connect"),
    path("stripe/thin/", stripe_thin_webhook, name="webhooks-stripe-thin"),
]
