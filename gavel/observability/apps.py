from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "gavel.observability"
    label = "observability"
    verbose_name = "Observability"

    def ready(self) -> None:
        from gavel.observability import celery_signals, sentry

        celery_signals.connect()
        sentry.sentry_init()
