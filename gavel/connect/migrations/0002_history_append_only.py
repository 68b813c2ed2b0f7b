"""PostgreSQL guard: the connected account history is append-only."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

FORWARD = """
CREATE FUNCTION connect_history_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'connected account history is append-only: add a new row instead'
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER connect_connectedaccountchange_append_only
    BEFORE UPDATE OR DELETE ON connect_connectedaccountchange
    FOR EACH ROW EXECUTE FUNCTION connect_history_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS connect_connectedaccountchange_append_only
    ON connect_connectedaccountchange;
DROP FUNCTION IF EXISTS connect_history_append_only();
"""


def forward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("connect", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
