"""People who buy, sell or run the marketplace. One person can both buy and sell."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils.translation import gettext_lazy as _


class GavelUserManager(UserManager["User"]):
    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        """The one form an email is stored and looked up in: lower case, all of it (Django's
        lowers only the domain). Registration, sign-in and password reset all use it."""
        return super().normalize_email(email).lower()

    def get_by_natural_key(self, username: str | None) -> User:
        """Sign-in (API tokens and the admin) finds the member whatever case the email is
        typed in."""
        return super().get_by_natural_key(self.normalize_email(username))

    def create_user(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra_fields: Any
    ) -> User:
        email = self.normalize_email(email)
        extra_fields.setdefault("username", email)
        return super().create_user(email=email, password=password, **extra_fields)

    def create_superuser(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra_fields: Any
    ) -> User:
        email = self.normalize_email(email)
        extra_fields.setdefault("username", email)
        return super().create_superuser(email=email, password=password, **extra_fields)


class User(AbstractUser):
    """A marketplace member. Roles: buyer (everyone by default), seller, staff (``is_staff``)."""

    # Unique through Meta.constraints, not unique=True: on PostgreSQL a field-level unique text
    # column also gets a varchar_pattern_ops index for LIKE 'prefix%' that no query uses
    # (docs/adr/0009). Forms and the admin still report duplicates on the field itself.
    username = models.CharField(
        _("username"),
        max_length=150,
        help_text=_("Required. 150 characters or fewer. Letters, digits and @/./+/-/_ only."),
        validators=[AbstractUser.username_validator],
        error_messages={"unique": _("A user with that username already exists.")},
    )
    email = models.EmailField()
    display_name = models.CharField(max_length=150, blank=True, default="")
    is_buyer = models.BooleanField(default=True)
    is_seller = models.BooleanField(default=False, help_text="Set once seller onboarding starts")
    # Legacy portal person id ("people.id"), kept for the migration's id map and support. NULL,
    # not "", for members not imported: the unique constraint allows many NULLs.
    legacy_person_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # When the last reset email was queued: at most one per PASSWORD_RESET_MIN_INTERVAL_SECONDS.
    password_reset_requested_at = models.DateTimeField(null=True, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["username"]

    objects: ClassVar[GavelUserManager] = GavelUserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(fields=["username"], name="user_username_unique"),
            models.UniqueConstraint(fields=["email"], name="user_email_unique"),
            models.UniqueConstraint(
                fields=["legacy_person_id"], name="user_legacy_person_id_unique"
            ),
        ]

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
