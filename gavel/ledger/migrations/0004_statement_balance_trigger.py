"""The balance guard checks each INSERT statement once, over the entries it touched.

0002's guard was a deferred constraint trigger run once per posting at commit, each run
re-reading its entry: the cost of a bulk import grew with every posting. This one is a
statement-level trigger with a transition table (``new_rows``): after each statement that
inserts postings (an ``INSERT`` or a ``COPY``), every entry it touched must sum to zero in
each currency, or the statement fails and nothing of it can be committed.

Statement-level triggers cannot be deferred, so an entry's postings must be inserted in one
statement: ``entry_post`` inserts them with one ``bulk_create`` and the legacy loader with one
``COPY`` per page, so both keep working; a posting written alone is refused at once (before,
at commit).
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

FORWARD = """
DROP TRIGGER IF EXISTS ledger_posting_balanced ON ledger_posting;
DROP FUNCTION IF EXISTS ledger_entry_balanced();

CREATE FUNCTION ledger_entries_balanced() RETURNS trigger AS $$
DECLARE
    unbalanced_entry_id bigint;
BEGIN
    SELECT p.entry_id INTO unbalanced_entry_id
    FROM ledger_posting p
    WHERE p.entry_id IN (SELECT DISTINCT entry_id FROM new_rows)
    GROUP BY p.entry_id, p.currency
    HAVING SUM(p.amount_minor) <> 0
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger entry %% does not balance', unbalanced_entry_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_postings_balanced
    AFTER INSERT ON ledger_posting
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_balanced();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS ledger_postings_balanced ON ledger_posting;
DROP FUNCTION IF EXISTS ledger_entries_balanced();

CREATE FUNCTION ledger_entry_balanced() RETURNS trigger AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM ledger_posting
        WHERE entry_id = NEW.entry_id
        GROUP BY currency HAVING SUM(amount_minor) <> 0
    ) THEN
        RAISE EXCEPTION 'ledger entry %% does not balance', NEW.entry_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER ledger_posting_balanced
    AFTER INSERT ON ledger_posting
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced();
"""


def forward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0003_balance_transaction_link")]
    operations = [migrations.RunPython(forward, backward)]
