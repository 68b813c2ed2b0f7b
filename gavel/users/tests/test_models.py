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


def test_the_migration_lowers_emails_sign_in_could_no_longer_find() -> None:
    """Sign-in looks an email up in lower case: 0004 lowers the ones stored with capitals
    (and the username copying it), except where another member has the lower-case form."""
    from importlib import import_module

    from django.db import connection

    lower = import_module("gavel.users.migrations.0004_emails_lower_case").LOWER
    capitals = User.objects.create(username="Admin@Example.com", email="Admin@Example.com")
    twin = User.objects.create(username="Ann@Example.com", email="Ann@Example.com")
    taken = User.objects.create(username="ann@example.com", email="ann@example.com")
    apart = User.objects.create(username="bob-legacy", email="Bob@Example.com")

    with connection.cursor() as cursor:
        cursor.execute(lower)

    found = dict(User.objects.values_list("pk", "email"))
    assert found == {
        capitals.pk: "admin@example.com",
        twin.pk: "Ann@Example.com",  # two accounts for one address: left for staff
        taken.pk: "ann@example.com",
        apart.pk: "bob@example.com",
    }
    assert User.objects.get(pk=apart.pk).username == "bob-legacy"  # not the email: kept
    assert User.objects.get(pk=capitals.pk).username == "admin@example.com"
    assert User.objects.get_by_natural_key("ADMIN@example.com").pk == capitals.pk
