"""Celery tasks of the users app; each calls one service."""

from __future__ import annotations

from celery import shared_task

from gavel.users.services import password_reset_email_send as _password_reset_email_send


@shared_task(name="gavel.users.tasks.password_reset_email_send", acks_late=True)
def password_reset_email_send(user_id: int) -> bool:
    return _password_reset_email_send(user_id=user_id)
