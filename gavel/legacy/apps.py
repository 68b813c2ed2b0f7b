from django.apps import AppConfig


class LegacyConfig(AppConfig):
    name = "gavel.legacy"
    label = "legacy"
    verbose_name = "Legacy portal migration"
