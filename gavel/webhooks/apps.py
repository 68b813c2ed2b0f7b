from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "gavel.webhooks"
    label = "webhooks"
    verbose_name = "Stripe webhooks"

    def ready(self) -> None:
        from celery import signals

        from gavel.webhooks.services.drain import drain_signal_reset

        signals.worker_init.connect(drain_signal_reset, weak=False)
