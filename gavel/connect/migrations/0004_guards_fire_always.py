"""Guard triggers fire in every session, replication role included (docs/adr/0010)."""

from django.db import migrations

from gavel.common.migration_operations import triggers_fire_always


class Migration(migrations.Migration):
    dependencies = [("connect", "0003_imported_accounts")]

    operations = [
        triggers_fire_always(
            ("connect_connectedaccountchange", "connect_connectedaccountchange_append_only"),
        ),
    ]
