from django.apps import AppConfig


class PayoutsConfig(AppConfig):
    name = "gavel.payouts"
    label = "payouts"
    verbose_name = "Payouts"

    def ready(self) -> None:
        from gavel.payouts import webhook_handlers  # noqa: F401  (registers handlers)
