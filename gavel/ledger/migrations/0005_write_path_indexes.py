"""Write-path indexes (docs/adr/0009): drop ``journalentry.kind``'s two indexes (no query
narrows by kind) and ``posting.account_id``'s own index (``posting_account_currency`` leads with
that column). PostgreSQL drops them in place; Django's AlterField would also drop and
re-validate the posting's foreign key."""

import django.db.models.deletion
from django.db import migrations, models

from gavel.common.migration_operations import IndexSwap


class Migration(migrations.Migration):
    dependencies = [("ledger", "0004_statement_balance_trigger")]

    operations = [
        IndexSwap(
            operations=[
                migrations.AlterField(
                    model_name="journalentry",
                    name="kind",
                    field=models.CharField(max_length=64),
                ),
            ],
            sql=[
                "DROP INDEX IF EXISTS ledger_journalentry_kind_6786841e",
                "DROP INDEX IF EXISTS ledger_journalentry_kind_6786841e_like",
            ],
            reverse_sql=[
                "CREATE INDEX ledger_journalentry_kind_6786841e ON ledger_journalentry (kind)",
                "CREATE INDEX ledger_journalentry_kind_6786841e_like"
                " ON ledger_journalentry (kind varchar_pattern_ops)",
            ],
        ),
        IndexSwap(
            operations=[
                migrations.AlterField(
                    model_name="posting",
                    name="account",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="postings",
                        to="ledger.ledgeraccount",
                    ),
                ),
            ],
            sql=["DROP INDEX IF EXISTS ledger_posting_account_id_964f801d"],
            reverse_sql=[
                "CREATE INDEX ledger_posting_account_id_964f801d ON ledger_posting (account_id)"
            ],
        ),
    ]
