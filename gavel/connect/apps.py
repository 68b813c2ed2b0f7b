from django.apps import AppConfig


class ConnectConfig(AppConfig):
    name = "gavel.connect"
    label = "connect"
    verbose_name = "Sellers on Stripe Connect"

    def ready(self) -> None:
        from gavel.connect import webhook_handlers  # noqa: F401 - registers the handlers
