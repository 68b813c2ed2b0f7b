from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from gavel.users.models import User

pytestmark = pytest.mark.django_db


def test_duplicates_are_field_errors_as_with_field_level_unique(buyer: User) -> None:
    """Uniqueness lives in Meta.constraints (docs/adr/0009); the admin's forms still get each
    duplicate as an error on its own field, with Django's usual messages."""
    User.objects.filter(pk=buyer.pk).update(legacy_person_id="p-1")
    twin = User(username=buyer.username, email=buyer.email, legacy_person_id="p-1", password="!")

    with pytest.raises(ValidationError) as caught:
        twin.full_clean()

    assert caught.value.message_dict == {
        "username": ["A user with that username already exists."],
        "email": ["User with this Email already exists."],
        "legacy_person_id": ["User with this Legacy person id already exists."],
    }
    assert User.objects.count() == 1
