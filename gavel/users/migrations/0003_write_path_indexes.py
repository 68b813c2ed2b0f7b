"""Write-path indexes (docs/adr/0009): ``username``, ``email`` and ``legacy_person_id`` stay
unique through named ``UniqueConstraint``s and lose the ``varchar_pattern_ops`` index no query
uses. PostgreSQL renames the unique constraint in place instead of building it again."""

import django.contrib.auth.validators
from django.db import migrations, models

from gavel.common.migration_operations import IndexSwap


def _swap(column: str, old: str, new: str) -> tuple[list[str], list[str]]:
    sql = [
        f"DROP INDEX IF EXISTS {old}_like",
        f"ALTER TABLE users_user RENAME CONSTRAINT users_user_{column}_key TO {new}",
    ]
    reverse_sql = [
        f"ALTER TABLE users_user RENAME CONSTRAINT {new} TO users_user_{column}_key",
        f"CREATE INDEX {old}_like ON users_user ({column} varchar_pattern_ops)",
    ]
    return sql, reverse_sql


USERNAME = _swap("username", "users_user_username_06e46fe6", "user_username_unique")
EMAIL = _swap("email", "users_user_email_243f6e77", "user_email_unique")
LEGACY_PERSON = _swap(
    "legacy_person_id", "users_user_legacy_person_id_e5a2354e", "user_legacy_person_id_unique"
)


class Migration(migrations.Migration):
    dependencies = [("users", "0002_password_reset_requested_at")]

    operations = [
        IndexSwap(
            operations=[
                migrations.AlterField(
                    model_name="user",
                    name="username",
                    field=models.CharField(
                        error_messages={"unique": "A user with that username already exists."},
                        help_text="Required. 150 characters or fewer. Letters, digits and"
                        " @/./+/-/_ only.",
                        max_length=150,
                        validators=[django.contrib.auth.validators.UnicodeUsernameValidator()],
                        verbose_name="username",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="user",
                    constraint=models.UniqueConstraint(
                        fields=("username",), name="user_username_unique"
                    ),
                ),
            ],
            sql=USERNAME[0],
            reverse_sql=USERNAME[1],
        ),
        IndexSwap(
            operations=[
                migrations.AlterField(
                    model_name="user", name="email", field=models.EmailField(max_length=254)
                ),
                migrations.AddConstraint(
                    model_name="user",
                    constraint=models.UniqueConstraint(fields=("email",), name="user_email_unique"),
                ),
            ],
            sql=EMAIL[0],
            reverse_sql=EMAIL[1],
        ),
        IndexSwap(
            operations=[
                migrations.AlterField(
                    model_name="user",
                    name="legacy_person_id",
                    field=models.CharField(blank=True, max_length=64, null=True),
                ),
                migrations.AddConstraint(
                    model_name="user",
                    constraint=models.UniqueConstraint(
                        fields=("legacy_person_id",), name="user_legacy_person_id_unique"
                    ),
                ),
            ],
            sql=LEGACY_PERSON[0],
            reverse_sql=LEGACY_PERSON[1],
        ),
    ]
