"""Reading users."""

from __future__ import annotations

from django.db.models import QuerySet

from gavel.users.models import User


def user_list() -> QuerySet[User]:
    return User.objects.order_by("-id")
