"""The legacy Rails portal's schema, as Rails created it on MySQL and on PostgreSQL.

Only the generator creates these tables; the reader only selects from them. Types follow the
Rails adapters: ``varchar(22)`` person ids, ``binary(16)``/``bytea`` uuids, ``tinyint(1)``
booleans on MySQL, ``datetime``/``timestamp without time zone`` in UTC, ``utf8mb3`` tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from gavel.legacy.connections import Dialect

# type key -> (MySQL type, PostgreSQL type)
_TYPES: dict[str, tuple[str, str]] = {
    "pk": ("bigint NOT NULL AUTO_INCREMENT", "bigserial"),
    "person_pk": ("varchar(22) NOT NULL", "varchar(22) NOT NULL"),
    "person": ("varchar(22)", "varchar(22)"),
    "uuid": ("binary(16)", "bytea"),
    "bool": ("tinyint(1)", "boolean"),
    "int": ("int", "integer"),
    "bigint": ("bigint", "bigint"),
    "str": ("varchar(255)", "varchar(255)"),
    "text": ("text", "text"),
    "datetime": ("datetime", "timestamp without time zone"),
    "date": ("date", "date"),
    "percent": ("decimal(6,3)", "numeric(6,3)"),
}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_key: str
    not_null: bool = False
    default: str | None = None

    def ddl(self, dialect: Dialect) -> str:
        mysql_type, postgres_type = _TYPES[self.type_key]
        sql_type = mysql_type if dialect is Dialect.MYSQL else postgres_type
        parts = [_quote(self.name, dialect), sql_type]
        if self.not_null and "NOT NULL" not in sql_type and self.type_key != "pk":
            parts.append("NOT NULL")
        if self.default is not None:
            default = self.default
            if self.type_key == "bool" and dialect is Dialect.POSTGRES:
                default = "true" if default == "1" else "false"
            parts.append(f"DEFAULT {default}")
        return " ".join(parts)


def _quote(name: str, dialect: Dialect) -> str:
    return f"`{name}`" if dialect is Dialect.MYSQL else f'"{name}"'


def _c(name: str, type_key: str, *, not_null: bool = False, default: str | None = None) -> Column:
    return Column(name, type_key, not_null, default)


TIMESTAMPS = (
    _c("created_at", "datetime", not_null=True),
    _c("updated_at", "datetime", not_null=True),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "people": (
        _c("id", "person_pk"),
        _c("uuid", "uuid", not_null=True),
        _c("community_id", "int", not_null=True),
        *TIMESTAMPS,
        _c("is_admin", "bool", default="0"),
        _c("locale", "str", default="'en'"),
        _c("preferences", "text"),
        _c("active_days_count", "int", default="0"),
        _c("last_page_load_date", "datetime"),
        _c("test_group_number", "int", default="1"),
        _c("username", "str", not_null=True),
        _c("email", "str"),
        _c("encrypted_password", "str", not_null=True, default="''"),
        _c("reset_password_token", "str"),
        _c("sign_in_count", "int", default="0"),
        _c("current_sign_in_ip", "str"),
        _c("given_name", "str"),
        _c("family_name", "str"),
        _c("display_name", "str"),
        _c("phone_number", "str"),
        _c("description", "text"),
        _c("image_file_name", "str"),
        _c("facebook_id", "str"),
        _c("authentication_token", "str"),
        _c("deleted", "bool", default="0"),
        _c("cloned_from", "person"),
    ),
    "stripe_accounts": (
        _c("id", "pk"),
        _c("person_id", "person"),
        _c("community_id", "int"),
        _c("stripe_seller_id", "str"),
        _c("stripe_bank_id", "str"),
        _c("stripe_customer_id", "str"),
        *TIMESTAMPS,
        _c("api_version", "str"),
        _c("stripe_source_info", "text"),
        _c("stripe_source_country", "str"),
    ),
    "listings": (
        _c("id", "pk"),
        _c("uuid", "uuid", not_null=True),
        _c("community_id", "int", not_null=True),
        _c("author_id", "person"),
        _c("category_id", "int"),
        _c("title", "str"),
        _c("description", "text"),
        _c("price_cents", "int"),
        _c("currency", "str"),
        _c("shipping_price_cents", "int"),
        _c("shipping_price_additional_cents", "int"),
        _c("unit_type", "str"),
        _c("open", "bool", default="1"),
        _c("deleted", "bool", default="0"),
        _c("state", "str", default="'approved'"),
        _c("times_viewed", "int", default="0"),
        _c("valid_until", "datetime"),
        *TIMESTAMPS,
    ),
    "transactions": (
        _c("id", "pk"),
        _c("starter_id", "person", not_null=True),
        _c("starter_uuid", "uuid", not_null=True),
        _c("listing_id", "int", not_null=True),
        _c("listing_uuid", "uuid", not_null=True),
        _c("listing_author_id", "person", not_null=True),
        _c("listing_author_uuid", "uuid", not_null=True),
        _c("listing_title", "str"),
        _c("community_id", "int", not_null=True),
        _c("current_state", "str"),
        _c("last_transition_at", "datetime"),
        _c("payment_gateway", "str", not_null=True, default="'none'"),
        _c("payment_process", "str", default="'none'"),
        _c("commission_from_seller", "percent"),
        _c("minimum_commission_cents", "int", default="0"),
        _c("minimum_commission_currency", "str"),
        _c("commission_from_buyer", "percent"),
        _c("minimum_buyer_fee_cents", "int", default="0"),
        _c("minimum_buyer_fee_currency", "str"),
        _c("listing_quantity", "int", default="1"),
        _c("unit_price_cents", "int"),
        _c("unit_price_currency", "str"),
        _c("unit_type", "str"),
        _c("shipping_price_cents", "int"),
        _c("delivery_method", "str", default="'none'"),
        _c("automatic_confirmation_after_days", "int", not_null=True),
        _c("starter_skipped_feedback", "bool", default="0"),
        _c("author_skipped_feedback", "bool", default="0"),
        _c("deleted", "bool", default="0"),
        *TIMESTAMPS,
    ),
    "transaction_transitions": (
        _c("id", "pk"),
        _c("to_state", "str"),
        _c("metadata", "text"),
        _c("sort_key", "int", default="0"),
        _c("transaction_id", "int"),
        _c("most_recent", "bool"),
        *TIMESTAMPS,
    ),
    "stripe_payments": (
        _c("id", "pk"),
        _c("community_id", "int"),
        _c("transaction_id", "int"),
        _c("payer_id", "person"),
        _c("receiver_id", "person"),
        _c("status", "str"),
        _c("sum_cents", "int"),
        _c("commission_cents", "int"),
        _c("currency", "str"),
        _c("stripe_charge_id", "str"),
        _c("stripe_transfer_id", "str"),
        _c("fee_cents", "int"),
        _c("real_fee_cents", "int"),
        _c("subtotal_cents", "int"),
        _c("transfered_at", "datetime"),
        _c("available_on", "datetime"),
        *TIMESTAMPS,
        _c("buyer_commission_cents", "int", default="0"),
        _c("stripe_payment_intent_id", "str"),
        _c("stripe_payment_intent_status", "str"),
        _c("stripe_payment_intent_client_secret", "str"),
    ),
    "payment_settings": (
        _c("id", "pk"),
        _c("active", "bool", not_null=True),
        _c("community_id", "int", not_null=True),
        _c("payment_gateway", "str"),
        _c("payment_process", "str"),
        _c("commission_from_seller", "percent"),
        _c("minimum_price_cents", "int"),
        _c("minimum_price_currency", "str"),
        _c("minimum_transaction_fee_cents", "int"),
        _c("minimum_transaction_fee_currency", "str"),
        _c("confirmation_after_days", "int", not_null=True),
        *TIMESTAMPS,
        _c("api_client_id", "str"),
        _c("api_private_key", "str"),
        _c("api_publishable_key", "str"),
        _c("api_verified", "bool", not_null=True, default="0"),
        _c("api_visible_private_key", "str"),
        _c("api_country", "str"),
        _c("commission_from_buyer", "percent"),
        _c("minimum_buyer_transaction_fee_cents", "int"),
        _c("minimum_buyer_transaction_fee_currency", "str"),
        _c("key_encryption_padding", "bool", not_null=True, default="0"),
    ),
}

# Created after the bulk load (faster), as the Rails migrations left them.
INDEXES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "people": (("index_people_on_email", ("email",)), ("index_people_on_uuid", ("uuid",))),
    "stripe_accounts": (("index_stripe_accounts_on_person_id", ("person_id",)),),
    "listings": (("index_listings_on_author_id", ("author_id",)),),
    "transactions": (
        ("index_transactions_on_starter_id", ("starter_id",)),
        ("index_transactions_on_listing_id", ("listing_id",)),
    ),
    "transaction_transitions": (
        (
            "index_transaction_transitions_on_sort_key_and_conversation_id",
            ("transaction_id", "sort_key"),
        ),
    ),
    "stripe_payments": (("index_stripe_payments_on_transaction_id", ("transaction_id",)),),
    "payment_settings": (("index_payment_settings_on_community_id", ("community_id",)),),
}


def table_ddl(table: str, dialect: Dialect) -> str:
    columns = ",\n  ".join(column.ddl(dialect) for column in TABLES[table])
    name = _quote(table, dialect)
    if dialect is Dialect.MYSQL:
        return (
            f"CREATE TABLE {name} (\n  {columns},\n  PRIMARY KEY (`id`)\n)"
            " ENGINE=InnoDB DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_unicode_ci"
        )
    return f"CREATE TABLE {name} (\n  {columns},\n  PRIMARY KEY (id)\n)"


def index_ddl(table: str, dialect: Dialect) -> list[str]:
    statements = []
    for index_name, columns in INDEXES.get(table, ()):
        quoted = ", ".join(_quote(column, dialect) for column in columns)
        statements.append(f"CREATE INDEX {index_name} ON {_quote(table, dialect)} ({quoted})")
    return statements


def column_names(table: str) -> list[str]:
    return [column.name for column in TABLES[table]]
