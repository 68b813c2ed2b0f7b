"""The legacy portal moves in: a small generated Rails portal database is imported with the
real importer (``gavel.legacy``), verified against the portal, and its people carry on."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.db import connection
from rest_framework_simplejwt.tokens import RefreshToken

from gavel.auctions.models import BuyerCustomer, BuyerCustomerTransition, VerifiedPaymentMethod
from gavel.auctions.services.customers import buyer_customers_refresh
from gavel.common.money import currency_exponent
from gavel.demo.chapters_payments import _books, _wait
from gavel.legacy.connections import (
    LegacyDatabase,
    database_connect,
    database_drop,
    database_parse,
    database_recreate,
)
from gavel.legacy.generator import GeneratorConfig, legacy_generate
from gavel.legacy.importer import ImportOptions, legacy_import
from gavel.legacy.models import ImportedListingOrderLine, LegacyAnomaly
from gavel.legacy.schema import TABLES
from gavel.legacy.states import AnomalyKind
from gavel.legacy.verify import legacy_verify
from gavel.payments.models import Order, OrderTransition, SellerTransfer
from gavel.payments.services.charging import order_capture
from gavel.users.models import User

if TYPE_CHECKING:
    from gavel.demo.story import StoryContext

A = AnomalyKind
# The demo's Stripe sandbox starts empty, so the portal's clean transactions are ones that moved
# no money on Stripe (a settled history would need its charges in the sandbox to reconcile;
# the importer's tests and benchmark load settled histories against the ledger).
DEMO_OUTCOMES: tuple[tuple[str, float], ...] = (
    ("initiated", 0.25),
    ("rejected", 0.25),
    ("expired", 0.2),
    ("failed", 0.2),
    ("errored", 1.0),  # the rest
)
# One of each, on payments, transactions and listings: every one of these keeps its row out
# of the ledger (blocking) or concerns a payment that moved nothing.
DEMO_RATES: dict[str, float] = dict.fromkeys(
    (
        A.NULL_MONEY,
        A.UNKNOWN_CURRENCY,
        A.ORPHAN_PAYMENT,
        A.PERSON_MISSING,
        A.STATE_MISMATCH,
        A.STUCK_REQUIRES_ACTION,
        A.DEPRECATED_STATE,
    ),
    0.04,
)
DEMO_PAYMENTS = 30


def _money(amount_minor: int, currency: str) -> str:
    exponent = currency_exponent(currency)
    major, minor = divmod(amount_minor, 10**exponent)
    return f"{currency} {major}.{minor:0{exponent}d}" if exponent else f"{currency} {major}"


def _portal_counts(portal: LegacyDatabase) -> dict[str, int]:
    connection_ = database_connect(portal)
    try:
        cursor = connection_.cursor()
        counts = {}
        for table in TABLES:
            cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 - our table names
            counts[table] = int(cursor.fetchone()[0])
        return counts
    finally:
        connection_.close()


def _portal_url() -> str:
    configured = getattr(settings, "DEMO_LEGACY_DATABASE_URL", "")
    return configured or f"postgres://postgres@127.0.0.1:5432/gavel_demo_legacy_{os.getpid()}"


def chapter_legacy_import(context: StoryContext) -> None:
    narrator = context.narrator
    narrator.chapter("The legacy portal moves in")
    if connection.vendor != "postgresql":
        narrator.step(
            "Skipped on this SQLite demo: the legacy importer stages and loads with PostgreSQL's"
            " COPY and upserts. `make demo` runs on the local PostgreSQL when one answers (or on"
            " DEMO_DATABASE_URL), with this chapter."
        )
        return
    portal = database_parse(_portal_url())
    database_recreate(portal)
    try:
        legacy_generate(
            database=portal,
            config=GeneratorConfig(
                payments=DEMO_PAYMENTS, seed=2026, rates=dict(DEMO_RATES), outcomes=DEMO_OUTCOMES
            ),
        )
        _in_flight_rows_write(portal, _in_flight_make(context))
        counts = _portal_counts(portal)
        narrator.step(
            f"The old Rails portal's database ({portal.dialect}, generated with known problems,"
            " and one payment authorized for real on Stripe, not captured yet):"
            f" {counts['people']} people, {counts['listings']} listings,"
            f" {counts['transactions']} transactions with {counts['transaction_transitions']}"
            f" state changes, {counts['stripe_payments']} Stripe payments."
        )
        run = legacy_import(database=portal, options=ImportOptions(is_resumable=False))
        steps = run.stats["steps"]
        orders = Order.objects.filter(kind=Order.Kind.LEGACY)
        history = OrderTransition.objects.filter(order__kind=Order.Kind.LEGACY).count()
        narrator.step(
            f"Gavel imports it (read in pages, staged, checked, loaded): "
            f"{User.objects.filter(legacy_person_id__isnull=False).count()} users without"
            f" a password (none is carried over), {steps['load:listings']['changed']} listings"
            f" into the sellers' catalogue, {orders.count()} orders with {history} history rows."
        )
        report = legacy_verify(database=portal)
        narrator.step(
            f"Verified against the portal: {len(report.rows)} figures side by side (row counts,"
            " states, every money column per currency, listings, the ledger):"
            f" {report.difference_count} differences."
        )
        kinds = Counter(LegacyAnomaly.objects.values_list("kind", "is_blocking"))
        narrator.detail(
            "Anomalies: "
            + ", ".join(
                f"{kind} {count}{' (held back)' if blocking else ''}"
                for (kind, blocking), count in sorted(kinds.items())
            )
        )
        _customers_read_back(context)
        _carried_on(context)
    finally:
        database_drop(portal)


def _customers_read_back(context: StoryContext) -> None:
    """The import's refresh task (on the worker) reads the buyers' Stripe customers back."""
    imported = BuyerCustomer.objects.filter(user__legacy_person_id__isnull=False)
    unsynced = imported.filter(status=BuyerCustomer.Status.UNSYNCED)
    _wait(
        context,
        lambda: not unsynced.exists(),
        fallback=lambda: buyer_customers_refresh(
            customer_pks=list(unsynced.values_list("pk", flat=True))
        ),
        what="The customers' refresh task",
    )
    found = imported.filter(status=BuyerCustomer.Status.ACTIVE).count()
    forgotten = BuyerCustomerTransition.objects.filter(
        subject__in=imported,
        from_status=BuyerCustomer.Status.UNSYNCED,
        to_status=BuyerCustomer.Status.CREATING,
    ).count()
    cards = VerifiedPaymentMethod.objects.filter(setup__customer__in=imported)
    adopted = cards.count()
    by_payment = cards.filter(setup__stripe_payment_intent_id__isnull=False).count()
    context.narrator.detail(
        f"The worker reads the buyers' {found + forgotten} Stripe customers back from Stripe:"
        f" {found} found, with {adopted} cards saved for off-session use adopted"
        f" ({adopted - by_payment} verified by a SetupIntent, {by_payment} saved by the"
        f" portal's payment; that buyer can bid at once); {forgotten} unknown to this Stripe"
        " account (the generated portal's made-up ids) are forgotten, and Gavel makes those"
        " buyers a new customer when they next need one."
    )


# One transaction still in flight at the cutover: the portal's preauthorize flow, made for real
# in the sandbox (a manual-capture destination charge), written into the portal as it would.
IN_FLIGHT_ID = 900_001
BUYER, SELLER = "LegacyBuyerDemo000001", "LegacySellerDemo00001"
UNIT_PRICE, SELLER_COMMISSION, BUYER_COMMISSION = 12_000, 1_200, 600  # 10 % and 5 % terms


def _in_flight_make(context: StoryContext) -> dict[str, str]:
    """On Stripe: the seller's connected account, the buyer's customer, the authorization."""
    client = context.sandbox.client()
    account = client.v1.accounts.create(
        params={
            "country": "US",
            "controller": {
                "fees": {"payer": "application"},
                "losses": {"payments": "application"},
                "stripe_dashboard": {"type": "express"},
                "requirement_collection": "stripe",
            },
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
        }
    )
    context.sandbox.complete_onboarding(account.id)
    customer = client.v1.customers.create(params={"email": "noor.legacy@example.com"})
    # The buyer saved a card for off-session use on the portal (a SetupIntent).
    client.v1.setup_intents.create(
        params={
            "customer": customer.id,
            "usage": "off_session",
            "payment_method": "pm_card_mastercard",
            "confirm": True,
            "return_url": "https://portal.invalid/return",
        }
    )
    intent = client.v1.payment_intents.create(
        params={
            "amount": UNIT_PRICE + BUYER_COMMISSION,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": "pm_card_visa",
            "confirm": True,
            "capture_method": "manual",
            "setup_future_usage": "off_session",  # the portal saves the card as it pays
            "transfer_data": {"destination": account.id},
            "application_fee_amount": SELLER_COMMISSION + BUYER_COMMISSION,
        }
    )
    return {"account": account.id, "customer": customer.id, "intent": intent.id}


def _in_flight_rows_write(portal: LegacyDatabase, stripe: dict[str, str]) -> None:
    """The portal's rows for the preauthorized transaction, as the portal writes them."""
    start = datetime.now(UTC) - timedelta(days=1)
    at = [(start + timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M:%S") for minute in range(4)]
    total = UNIT_PRICE + BUYER_COMMISSION
    connection_ = database_connect(portal, autocommit=False)
    try:
        cursor = connection_.cursor()
        for person, email, given, family in (
            (BUYER, "noor.legacy@example.com", "Noor", "Haddad"),
            (SELLER, "ines.legacy@example.com", "Inès", "Laurent"),
        ):
            cursor.execute(
                "INSERT INTO people (id, uuid, community_id, created_at, updated_at, username,"
                " email, given_name, family_name) VALUES (%s, %s, 1, %s, %s, %s, %s, %s, %s)",
                [person, uuid.uuid4().bytes, at[0], at[0], person.lower(), email, given, family],
            )
        for row_id, person, column, value in (
            (IN_FLIGHT_ID, SELLER, "stripe_seller_id", stripe["account"]),
            (IN_FLIGHT_ID + 1, BUYER, "stripe_customer_id", stripe["customer"]),
        ):
            cursor.execute(
                f"INSERT INTO stripe_accounts (id, person_id, community_id, {column}, created_at,"  # noqa: S608
                " updated_at) VALUES (%s, %s, 1, %s, %s, %s)",
                [row_id, person, value, at[0], at[0]],
            )
        cursor.execute(
            "INSERT INTO listings (id, uuid, community_id, author_id, title, description,"
            " price_cents, currency, open, created_at, updated_at) VALUES (%s, %s, 1, %s,"
            " 'Art deco mantel clock', 'Walnut case, keeps time.', %s, 'USD', false, %s, %s)",
            [IN_FLIGHT_ID, uuid.uuid4().bytes, SELLER, UNIT_PRICE, at[0], at[0]],
        )
        cursor.execute(
            "INSERT INTO transactions (id, starter_id, starter_uuid, listing_id, listing_uuid,"
            " listing_author_id, listing_author_uuid, community_id, current_state,"
            " last_transition_at, payment_gateway, payment_process, commission_from_seller,"
            " minimum_commission_cents, minimum_commission_currency, commission_from_buyer,"
            " minimum_buyer_fee_cents, minimum_buyer_fee_currency, listing_quantity,"
            " unit_price_cents, unit_price_currency, shipping_price_cents,"
            " automatic_confirmation_after_days, created_at, updated_at) VALUES (%s, %s, %s,"
            " %s, %s, %s, %s, 1, 'preauthorized', %s, 'stripe', 'preauthorize', 10, 0, 'USD',"
            " 5, 0, 'USD', 1, %s, 'USD', 0, 14, %s, %s)",
            [
                IN_FLIGHT_ID,
                BUYER,
                uuid.uuid4().bytes,
                IN_FLIGHT_ID,
                uuid.uuid4().bytes,
                SELLER,
                uuid.uuid4().bytes,
                at[3],
                UNIT_PRICE,
                at[0],
                at[3],
            ],
        )
        for sort_key, state in enumerate(("not_started", "initiated", "preauthorized"), start=1):
            cursor.execute(
                "INSERT INTO transaction_transitions (id, to_state, sort_key, transaction_id,"
                " most_recent, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    IN_FLIGHT_ID + sort_key,
                    state,
                    sort_key,
                    IN_FLIGHT_ID,
                    state == "preauthorized",
                    at[sort_key],
                    at[sort_key],
                ],
            )
        cursor.execute(
            "INSERT INTO stripe_payments (id, community_id, transaction_id, payer_id, receiver_id,"
            " status, sum_cents, commission_cents, currency, fee_cents, subtotal_cents,"
            " created_at, updated_at, buyer_commission_cents, stripe_payment_intent_id,"
            " stripe_payment_intent_status) VALUES (%s, 1, %s, %s, %s, 'pending', %s, %s, 'USD',"
            " 0, %s, %s, %s, %s, %s, 'requires_capture')",
            [
                IN_FLIGHT_ID,
                IN_FLIGHT_ID,
                BUYER,
                SELLER,
                total,
                SELLER_COMMISSION,
                UNIT_PRICE,
                at[3],
                at[3],
                BUYER_COMMISSION,
                stripe["intent"],
            ],
        )
        connection_.commit()
    finally:
        connection_.close()


def _password_set_from_reset_link(context: StoryContext, user: User, *, as_user: str) -> None:
    """How an imported member signs in: a reset link by email (sent by the worker), a new
    password, then a token like anybody else."""
    from gavel.demo.story import DEMO_PASSWORD

    mail.outbox = []
    context.api("POST", "/api/v1/auth/password-reset/", body={"email": user.email}, expect=202)
    deadline = time.monotonic() + 20
    while not mail.outbox:
        if time.monotonic() > deadline:
            raise RuntimeError("the reset email was not sent in time")
        time.sleep(0.05)
    link = re.search(r"https://\S+", str(mail.outbox[0].body))
    if link is None:
        raise RuntimeError("the reset email holds no link")
    query = parse_qs(urlparse(link.group(0)).query)
    context.api(
        "POST",
        "/api/v1/auth/password-reset/confirm/",
        body={
            "uid": query["uid"][0],
            "token": query["token"][0],
            "new_password": DEMO_PASSWORD,
        },
    )
    tokens = context.api(
        "POST", "/api/v1/auth/token/", body={"email": user.email, "password": DEMO_PASSWORD}
    )
    context.tokens[as_user] = tokens["access"]


def _carried_on(context: StoryContext) -> None:
    """The in-flight order is handed to Gavel, captured when the seller accepts, and confirmed
    by the buyer in the app: from here on it is an ordinary Gavel order."""
    narrator = context.narrator
    order = Order.objects.get(legacy_reference=f"legacy:transactions:{IN_FLIGHT_ID}")
    seller = User.objects.get(legacy_person_id=SELLER)
    buyer = User.objects.get(legacy_person_id=BUYER)
    linked = ImportedListingOrderLine.objects.get(order_line__order=order).listing
    _password_set_from_reset_link(context, seller, as_user="legacy_seller")
    page = context.api("GET", "/api/v1/legacy/listings/", as_user="legacy_seller")
    (listing,) = page["results"]
    if listing["id"] != linked.pk:
        raise RuntimeError("the in-flight order does not point at its listing")
    narrator.step(
        f"{seller.get_full_name()} sold on the portal; now Gavel user #{seller.pk}, without a"
        " password. She asks the app for a reset link, sets her password from the email,"
        f" signs in and finds her legacy listing in the app: {listing['title']!r} at"
        f" {_money(listing['price_minor'], listing['currency'])} ({listing['status']}, sold"
        f" {listing['times_sold']} time; history, never put up for auction)."
        f" {buyer.get_full_name()}'s order #{order.pk} points at it: {order.status} at the"
        " cutover, the payment authorized on Stripe and not captured yet."
    )
    adopted = StringIO()
    call_command("legacy_adopt_in_flight", stdout=adopted)
    order = order_capture(order_id=order.pk)
    narrator.step(
        f"The cutover hands it to Gavel (legacy_adopt_in_flight: {adopted.getvalue().strip()});"
        f" {seller.first_name} accepts and Gavel captures {_money(order.captured_minor, 'USD')}"
        f" on the PaymentIntent the portal created ({order.status})."
    )
    context.tokens["legacy_buyer"] = str(RefreshToken.for_user(buyer).access_token)
    context.api(
        "POST",
        f"/api/v1/payments/orders/{order.pk}/confirm-receipt/",
        as_user="legacy_buyer",
        body={},
    )
    page = context.api("GET", "/api/v1/payments/orders/", as_user="legacy_buyer")
    (summary,) = [row for row in page["results"] if row["id"] == order.pk]
    transfer = SellerTransfer.objects.get(line__order=order)
    narrator.step(
        f"{buyer.first_name} signs in too, sees order #{order.pk} ({summary['status']}) in"
        " the app and confirms receipt:"
        f" {seller.first_name}'s Stripe account {transfer.destination_account_id}"
        f" keeps {_money(UNIT_PRICE - SELLER_COMMISSION, 'USD')} of the destination charge"
        f" ({transfer.status})."
    )
    _books(context, "after the legacy order")
