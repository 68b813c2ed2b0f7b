from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from gavel.users.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin[User]):
    list_display = ("email", "display_name", "is_buyer", "is_seller", "is_staff", "date_joined")
    list_filter = ("is_buyer", "is_seller", "is_staff", "is_active")
    search_fields = ("email", "display_name", "legacy_person_id")
    ordering = ("email",)
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        ("Marketplace", {"fields": ("display_name", "is_buyer", "is_seller", "legacy_person_id")}),
    )
