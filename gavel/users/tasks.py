"""Celery tasks of the users app; each calls one service."""

from __future__ import annotations

from celery import shared_task

from gavel.users.services import expired_tokens_flush as _expired_tokens_flush
from gavel.users.services import password_reset_email_send as _password_reset_email_send


@shared_task(name="gavel.users.tasks.password_reset_email_send", acks_late=True)
def password_reset_email_send(user_id: int) -> bool:
    return _password_reset_email_send(user_id=user_id)


@shared_task(name="gavel.users.tasks.expired_tokens_flush", acks_late=True)
def expired_tokens_flush() -> int:
    """Forget refresh tokens past their expiry (recorded for revocation; useless once expired).
    Returns how many were deleted."""
    return _expired_tokens_flush()
