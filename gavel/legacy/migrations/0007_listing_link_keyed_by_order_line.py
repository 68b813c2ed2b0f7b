"""The links from imported order lines to their listings keyed by the order line.

Each line has at most one link (the field was one-to-one already), so the line's id is the
link's key: no serial ``id`` of its own. A first import writes a link for each of its million
order lines; each cost a sequence call and a second unique index.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("legacy", "0006_staging_keyed_by_legacy_id"),
        ("payments", "0005_guards_fire_always"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="importedlistingorderline",
            name="id",
        ),
        migrations.AlterField(
            model_name="importedlistingorderline",
            name="order_line",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.PROTECT,
                primary_key=True,
                related_name="imported_listing_link",
                serialize=False,
                to="payments.orderline",
            ),
        ),
    ]
