from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "gavel.users"
    label = "users"
    verbose_name = "Users"
