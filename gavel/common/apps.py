from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "gavel.common"
    label = "common"
    verbose_name = "Common infrastructure"
