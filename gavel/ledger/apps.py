from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "gavel.ledger"
    label = "ledger"
    verbose_name = "Ledger"
