from django.apps import AppConfig


class AuctionsConfig(AppConfig):
    name = "gavel.auctions"
    label = "auctions"
    verbose_name = "Auctions and bidding"

    def ready(self) -> None:
        from gavel.auctions import webhook_handlers  # noqa: F401 - registers the handlers
