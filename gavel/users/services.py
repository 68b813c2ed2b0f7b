"""User services: registration, and password reset by emailed link.

Imported legacy members have no password (none is carried over from the portal): they set one
through a reset link, like anybody who forgot theirs.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from gavel.common.errors import ConflictError, ServiceError
from gavel.common.outbox import outbox_enqueue
from gavel.users.models import User

logger = logging.getLogger(__name__)

PASSWORD_RESET_EMAIL_TASK = "gavel.users.tasks.password_reset_email_send"  # noqa: S105 - a task name
# The username column (150 characters) keeps the email too, so an email can be no longer.
EMAIL_MAX_LENGTH = 150
EMAIL_TOO_LONG = f"An email of at most {EMAIL_MAX_LENGTH} characters is required."


def _password_validate(password: str, user: User) -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as error:
        raise ServiceError(
            "Password rejected.", code="weak_password", fields={"password": list(error.messages)}
        ) from error


def user_register(*, email: str, password: str, display_name: str = "") -> User:
    """Create a buyer account. The email is unique, case-insensitively."""
    normalized_email = User.objects.normalize_email(email)
    if len(normalized_email) > EMAIL_MAX_LENGTH:  # lower() can lengthen a few letters
        raise ServiceError(EMAIL_TOO_LONG, code="invalid", fields={"email": [EMAIL_TOO_LONG]})
    candidate = User(email=normalized_email, username=normalized_email, display_name=display_name)
    _password_validate(password, candidate)
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


def password_reset_request(*, email: str) -> bool:
    """Queue a reset email for the active member with this email, at most one per
    PASSWORD_RESET_MIN_INTERVAL_SECONDS. Returns whether one was queued; callers answer the same
    either way, so nobody learns who has an account.

    One conditional UPDATE claims the window, so concurrent requests queue one email. The email
    goes through the outbox: it is sent after commit, and again if the broker was down.
    """
    now = timezone.now()
    window_start = now - timedelta(seconds=settings.PASSWORD_RESET_MIN_INTERVAL_SECONDS)
    normalized_email = User.objects.normalize_email(email)
    with transaction.atomic():
        user_ids = list(
            User.objects.filter(email=normalized_email, is_active=True)
            .filter(
                Q(password_reset_requested_at__isnull=True)
                | Q(password_reset_requested_at__lt=window_start)
            )
            .values_list("pk", flat=True)
        )
        if not user_ids:
            return False
        claimed = (
            User.objects.filter(pk=user_ids[0])
            .filter(
                Q(password_reset_requested_at__isnull=True)
                | Q(password_reset_requested_at__lt=window_start)
            )
            .update(password_reset_requested_at=now)
        )
        if not claimed:
            return False
        outbox_enqueue(
            task_name=PASSWORD_RESET_EMAIL_TASK, kwargs={"user_id": user_ids[0]}, queue="default"
        )
    return True


def password_reset_link(*, user: User) -> str:
    """The link for the reset email: uid and a one-time token (it dies once the password
    changes, or after PASSWORD_RESET_TIMEOUT)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return settings.PASSWORD_RESET_URL.replace("{uid}", uid).replace("{token}", token)


def password_reset_email_send(*, user_id: int) -> bool:
    """Send the reset email (task). A member deactivated since the request gets none. Sending
    twice (a redelivered task) sends two working links, never a wrong one."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    name = user.display_name or user.email
    send_mail(
        subject="Set your Gavel password",
        message=(
            f"Hello {name},\n\n"
            "Use this link to choose your Gavel password:\n"
            f"{password_reset_link(user=user)}\n\n"
            "The link works once. If you did not ask for it, ignore this email.\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )
    logger.info("password reset email sent", extra={"user_id": user.pk})
    return True


def password_reset_confirm(*, uid: str, token: str, new_password: str) -> User:
    """Set a new password from a reset link. A bad, used or expired link is a 400
    (``invalid_reset_link``), a weak password a 400 (``weak_password``); neither writes."""
    invalid = ServiceError(
        "This reset link is not valid, was used already or has expired.",
        code="invalid_reset_link",
        fields={"token": ["Ask for a new reset link."]},
    )
    try:
        user_pk = int(force_str(urlsafe_base64_decode(uid)))
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError):
        raise invalid from None
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_pk, is_active=True).first()
        if user is None or not default_token_generator.check_token(user, token):
            raise invalid
        _password_validate(new_password, user)
        user.set_password(new_password)
        user.password_reset_requested_at = None
        user.save(update_fields=["password", "password_reset_requested_at"])
        sessions_revoke(user=user)
    return user


def sessions_revoke(*, user: User) -> int:
    """Refuse every refresh token issued to ``user`` so far (after a password reset: whoever
    knew the old password is signed out once their access token, 15 minutes at most, ends).
    Returns how many were revoked now."""
    outstanding = OutstandingToken._default_manager.filter(user=user, blacklistedtoken__isnull=True)
    revoked = [BlacklistedToken(token=token) for token in outstanding]
    BlacklistedToken._default_manager.bulk_create(revoked, ignore_conflicts=True)
    return len(revoked)


def expired_tokens_flush() -> int:
    """Delete recorded refresh tokens past their expiry, with their revocations (what simplejwt's
    ``flushexpiredtokens`` does); the beat runs it hourly. Returns how many tokens went."""
    _, per_model = OutstandingToken._default_manager.filter(expires_at__lte=timezone.now()).delete()
    return per_model.get(OutstandingToken._meta.label, 0)
