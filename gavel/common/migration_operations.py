"""Migration operations of our own.

``IndexSwap`` changes the migration state with ordinary operations (``AlterField``,
``AddIndex``, ``AddConstraint``) but, on PostgreSQL, makes the schema change with the few
statements given instead of the ones Django would run. Django turns ``db_index=True`` into
``Meta.indexes`` (or ``unique=True`` into a ``UniqueConstraint``) by dropping the index and
building it again, and a foreign key's ``db_index=False`` by dropping and re-validating the
constraint: minutes of locked writes on a table of millions of rows, where renaming the
existing index and dropping the unused one takes milliseconds (docs/adr/0009). Other databases
(the SQLite demo) run the operations' own schema changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState


class IndexSwap(migrations.SeparateDatabaseAndState):
    def __init__(
        self, *, operations: Sequence[Operation], sql: Sequence[str], reverse_sql: Sequence[str]
    ) -> None:
        super().__init__(database_operations=operations, state_operations=operations)
        self.sql = list(sql)
        self.reverse_sql = list(reverse_sql)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (
            self.__class__.__qualname__,
            [],
            {"operations": self.state_operations, "sql": self.sql, "reverse_sql": self.reverse_sql},
        )

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor != "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        for statement in self.sql:
            schema_editor.execute(statement)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor != "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
            return
        for statement in self.reverse_sql:
            schema_editor.execute(statement)

    def describe(self) -> str:
        return "Index change (PostgreSQL: rename and drop in place)"


def triggers_fire_always(*triggers: tuple[str, str]) -> migrations.RunPython:
    """Make guard triggers (table, trigger) fire in every session, a session whose
    ``session_replication_role`` is ``replica`` included (the legacy import's pages, which
    check foreign keys set-based instead of row by row: docs/adr/0010): a guard is never
    skipped. PostgreSQL only; reversed to PostgreSQL's default (``ENABLE TRIGGER``)."""

    def forward(apps: object, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            for table, trigger in triggers:
                schema_editor.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {trigger}")

    def backward(apps: object, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            for table, trigger in triggers:
                schema_editor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")

    return migrations.RunPython(forward, backward)
