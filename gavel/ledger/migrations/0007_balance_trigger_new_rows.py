"""The balance guard sums only the postings each statement inserts.

0004's guard re-read every posting of each entry a statement touched, through the postings'
``entry_id`` index: for a bulk writer, a second pass over every row it wrote. Reading the
statement's own rows is enough. Before the statement, every entry balances in each currency:
each earlier statement that wrote postings was checked, this trigger fires in every session
(0006: ``ENABLE ALWAYS``), and postings can be neither updated nor deleted (append-only guard).
So an entry balances after the statement exactly when the postings the statement added to it
sum to zero in each currency. What the guard accepts and refuses is unchanged (the ledger's
tests, one entry split over two statements included); it no longer needs the ``entry_id``
index, which a first legacy import may then build after loading (ADR 0011).
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

BODY = """
CREATE OR REPLACE FUNCTION ledger_entries_balanced() RETURNS trigger AS $$
DECLARE
    unbalanced_entry_id bigint;
BEGIN
    SELECT n.entry_id INTO unbalanced_entry_id
    FROM {rows}
    GROUP BY n.entry_id, n.currency
    HAVING SUM(n.amount_minor) <> 0
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger entry %% does not balance', unbalanced_entry_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""
FORWARD = BODY.format(rows="new_rows n")
BACKWARD = BODY.format(
    rows="ledger_posting n WHERE n.entry_id IN (SELECT DISTINCT entry_id FROM new_rows)"
)


def forward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0006_guards_fire_always")]
    operations = [migrations.RunPython(forward, backward)]
