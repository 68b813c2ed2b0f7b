"""Write-path indexes (docs/adr/0009): ``order.status``, ``order.stripe_charge_id`` and
``orderline.seller_account_id`` keep their btree (now named in ``Meta.indexes``) and lose the
``varchar_pattern_ops`` twin no query uses. PostgreSQL renames the btree in place instead of
building it again."""

from django.db import migrations, models

from gavel.common.migration_operations import IndexSwap

STATUS_CHOICES = [
    ("pending", "Pending"),
    ("unknown", "Unknown"),
    ("requires_action", "Requires Action"),
    ("failed", "Failed"),
    ("authorized", "Authorized"),
    ("captured", "Captured"),
    ("partially_refunded", "Partially Refunded"),
    ("refunded", "Refunded"),
    ("canceled", "Canceled"),
    ("disputed", "Disputed"),
    ("dispute_lost", "Dispute Lost"),
]


def _swap(table: str, column: str, old: str, new: str) -> tuple[list[str], list[str]]:
    sql = [f"DROP INDEX IF EXISTS {old}_like", f"ALTER INDEX {old} RENAME TO {new}"]
    reverse_sql = [
        f"ALTER INDEX {new} RENAME TO {old}",
        f"CREATE INDEX {old}_like ON {table} ({column} varchar_pattern_ops)",
    ]
    return sql, reverse_sql


STATUS = _swap("payments_order", "status", "payments_order_status_c4546f84", "order_status")
CHARGE = _swap(
    "payments_order",
    "stripe_charge_id",
    "payments_order_stripe_charge_id_4e680b20",
    "order_stripe_charge_id",
)
SELLER_ACCOUNT = _swap(
    "payments_orderline",
    "seller_account_id",
    "payments_orderline_seller_account_id_fc20cb0a",
    "orderline_seller_account_id",
)


class Migration(migrations.Migration):
    dependencies = [("payments", "0003_dispute_withdrawal_booked")]

    operations = [
        IndexSwap(
            operations=[
                migrations.AlterField(
                    model_name="order",
                    name="status",
                    field=models.CharField(
                        choices=STATUS_CHOICES, default="pending", max_length=24
                    ),
                ),
                migrations.AddIndex(
                    model_name="order",
                    index=models.Index(fields=["status"], name="order_status"),
                ),
            ],
            sql=STATUS[0],
            reverse_sql=STATUS[1],
        ),
        IndexSwap(
            operations=[
                migrations.AlterField(
                    model_name="order",
                    name="stripe_charge_id",
                    field=models.CharField(blank=True, default="", max_length=255),
                ),
                migrations.AddIndex(
                    model_name="order",
                    index=models.Index(fields=["stripe_charge_id"], name="order_stripe_charge_id"),
                ),
            ],
            sql=CHARGE[0],
            reverse_sql=CHARGE[1],
        ),
        IndexSwap(
            operations=[
                migrations.AlterField(
                    model_name="orderline",
                    name="seller_account_id",
                    field=models.CharField(max_length=255),
                ),
                migrations.AddIndex(
                    model_name="orderline",
                    index=models.Index(
                        fields=["seller_account_id"], name="orderline_seller_account_id"
                    ),
                ),
            ],
            sql=SELLER_ACCOUNT[0],
            reverse_sql=SELLER_ACCOUNT[1],
        ),
    ]
