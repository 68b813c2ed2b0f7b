"""User services: registration."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from gavel.common.errors import ConflictError, ServiceError
from gavel.users.models import User


def user_register(*, email: str, password: str, display_name: str = "") -> User:
    """Create a buyer account. The email is unique, case-insensitively."""
    normalized_email = User.objects.normalize_email(email).lower()
    candidate = User(email=normalized_email, username=normalized_email, display_name=display_name)
    try:
        validate_password(password, user=candidate)
    except ValidationError as error:
        raise ServiceError(
            "Password rejected.", code="weak_password", fields={"password": list(error.messages)}
        ) from error
    try:
        with transaction.atomic():
            return User.objects.create_user(
                email=normalized_email, password=password, display_name=display_name
            )
    except IntegrityError as error:
        raise ConflictError(
            "An account with this email already exists.",
            code="email_taken",
            fields={"email": ["Already registered."]},
        ) from error
