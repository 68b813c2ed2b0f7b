"""Guard triggers fire in every session, replication role included (docs/adr/0010)."""

from django.db import migrations

from gavel.common.migration_operations import triggers_fire_always


class Migration(migrations.Migration):
    dependencies = [("payments", "0004_write_path_indexes")]

    operations = [
        triggers_fire_always(
            ("payments_ordertransition", "payments_ordertransition_append_only"),
            ("payments_paymentevent", "payments_paymentevent_append_only"),
            ("payments_auditlogentry", "payments_auditlogentry_append_only"),
        ),
    ]
