from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "gavel.payments"
    label = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from gavel.payments import webhook_handlers  # noqa: F401  (registers handlers)
