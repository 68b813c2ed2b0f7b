"""Guard triggers fire in every session, replication role included (docs/adr/0010)."""

from django.db import migrations

from gavel.common.migration_operations import triggers_fire_always


class Migration(migrations.Migration):
    dependencies = [("ledger", "0005_write_path_indexes")]

    operations = [
        triggers_fire_always(
            ("ledger_posting", "ledger_postings_balanced"),
            ("ledger_posting", "ledger_posting_append_only"),
            ("ledger_journalentry", "ledger_journalentry_append_only"),
            ("ledger_balancetransactionlink", "ledger_btlink_append_only"),
        ),
    ]
