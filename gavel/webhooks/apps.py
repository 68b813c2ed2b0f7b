from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "gavel.webhooks"
    label = "webhooks"
    verbose_name = "Stripe webhooks"
