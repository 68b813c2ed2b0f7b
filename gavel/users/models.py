"""People who buy, sell or run the marketplace. One person can both buy and sell."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models


class GavelUserManager(UserManager["User"]):
    def create_user(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra_fields: Any
    ) -> User:
        extra_fields.setdefault("username", email)
        return super().create_user(email=email, password=password, **extra_fields)

    def create_superuser(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra_fields: Any
    ) -> User:
        extra_fields.setdefault("username", email)
        return super().create_superuser(email=email, password=password, **extra_fields)


class User(AbstractUser):
    """A marketplace member. Roles: buyer (everyone by default), seller, staff (``is_staff``)."""

    email = models.EmailField(unique=True)
    display_name = models.CharField(max_length=150, blank=True, default="")
    is_buyer = models.BooleanField(default=True)
    is_seller = models.BooleanField(default=False, help_text="Set once seller onboarding starts")
    # Legacy portal person id ("people.id"), kept for the migration's id map and support.
    legacy_person_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # When the last reset email was queued: at most one per PASSWORD_RESET_MIN_INTERVAL_SECONDS.
    password_reset_requested_at = models.DateTimeField(null=True, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["username"]

    objects: ClassVar[GavelUserManager] = GavelUserManager()

    @property
    def roles(self) -> list[str]:
        roles = []
        if self.is_buyer:
            roles.append("buyer")
        if self.is_seller:
            roles.append("seller")
        if self.is_staff:
            roles.append("staff")
        return roles
