"""``rows_insert``: one statement for many rows, each field as ``bulk_create`` would write it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from gavel.common.bulk import rows_insert
from gavel.common.models import OutboxMessage
from gavel.users.models import User

pytestmark = pytest.mark.django_db


def _fields(row: object, *, without: set[str]) -> dict[str, object]:
    return {
        field.attname: getattr(row, field.attname)
        for field in type(row)._meta.concrete_fields  # type: ignore[attr-defined]
        if field.attname not in without
    }


def test_rows_take_their_columns_in_order_and_every_other_field_its_model_default() -> None:
    kwargs = [{"ids": [3, 1, 2], "nested": {"é": None}}, {}, {"quote": 'it\'s "x"'}]
    before = timezone.now()

    inserted = rows_insert(
        OutboxMessage,
        columns={"task_name": ["a", "b", "c"], "kwargs": kwargs},
        values={"queue": "payments"},
        returning=("pk", "task_name"),
    )

    assert [name for _, name in inserted] == ["a", "b", "c"]
    assert [pk for pk, _ in inserted] == sorted(pk for pk, _ in inserted)  # inserted in order
    rows = list(OutboxMessage.objects.filter(pk__in=[pk for pk, _ in inserted]).order_by("pk"))
    assert [row.kwargs for row in rows] == kwargs
    assert {row.queue for row in rows} == {"payments"}
    assert all(before <= row.created_at <= timezone.now() for row in rows)  # auto_now_add
    made = OutboxMessage.objects.create(task_name="a", kwargs=kwargs[0], queue="payments")
    same = {"id", "created_at"}
    assert _fields(rows[0], without=same) == _fields(made, without=same)


def test_a_model_with_many_defaults_reads_back_as_the_orm_would_have_written_it() -> None:
    joined = timezone.now() - timedelta(days=3)
    ((pk,),) = rows_insert(
        User,
        columns={"username": ["bulk-1"], "email": ["b1@example.com"]},
        values={"date_joined": joined, "is_buyer": True},
    )
    made = User.objects.create(
        username="orm-1", email="o1@example.com", date_joined=joined, is_buyer=True
    )

    row = User.objects.get(pk=pk)
    differs = {"id", "username", "email", "password"}
    assert _fields(row, without=differs) == _fields(made, without=differs)
    assert row.date_joined == joined


def test_a_row_a_unique_constraint_refuses_is_skipped_when_asked_and_fails_otherwise() -> None:
    User.objects.create(username="taken", email="taken@example.com")

    inserted = rows_insert(
        User,
        columns={
            "username": ["fresh", "taken", "fresh"],
            "email": ["f1@example.com", "t2@example.com", "f3@example.com"],
        },
        returning=("username",),
        is_conflict_skipped=True,
    )

    assert inserted == [("fresh",)]  # the second "fresh" meets the first one's row
    assert User.objects.filter(username__in=["fresh", "taken"]).count() == 2
    with pytest.raises(IntegrityError, match="duplicate key"):
        rows_insert(User, columns={"username": ["taken"], "email": ["t4@example.com"]})


def test_nothing_to_insert_sends_nothing_and_malformed_columns_are_refused() -> None:
    assert rows_insert(OutboxMessage, columns={"task_name": []}) == []
    with pytest.raises(ValueError, match="different lengths"):
        rows_insert(OutboxMessage, columns={"task_name": ["a"], "queue": ["x", "y"]})
    with pytest.raises(ValueError, match="no field"):
        rows_insert(OutboxMessage, columns={"task": ["a"]})
    assert not OutboxMessage.objects.exists()
