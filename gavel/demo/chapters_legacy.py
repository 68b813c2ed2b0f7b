"""The legacy portal moves in: a small generated Rails portal database is imported with the
real importer (``gavel.legacy``), verified against the portal, and its people carry on."""

from __future__ import annotations

import os
from collections import Counter
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection
from rest_framework_simplejwt.tokens import RefreshToken

from gavel.common.money import currency_exponent
from gavel.legacy.connections import database_drop, database_parse, database_recreate
from gavel.legacy.generator import GeneratorConfig, legacy_generate
from gavel.legacy.importer import ImportOptions, legacy_import
from gavel.legacy.models import ImportedListing, ImportedListingOrderLine, LegacyAnomaly
from gavel.legacy.states import AnomalyKind
from gavel.legacy.verify import legacy_verify
from gavel.payments.models import Order, OrderTransition
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


def _portal_url() -> str:
    configured = getattr(settings, "DEMO_LEGACY_DATABASE_URL", "")
    return configured or f"postgres://postgres@127.0.0.1:5432/gavel_demo_legacy_{os.getpid()}"


def chapter_legacy_import(context: StoryContext) -> None:
    narrator = context.narrator
    narrator.chapter("The legacy portal moves in")
    if connection.vendor != "postgresql":
        narrator.step(
            "Skipped on this SQLite demo: the legacy importer stages and loads with PostgreSQL's"
            " COPY and upserts; `make demo-postgres` runs the whole story on PostgreSQL with"
            " this chapter."
        )
        return
    portal = database_parse(_portal_url())
    database_recreate(portal)
    try:
        manifest = legacy_generate(
            database=portal,
            config=GeneratorConfig(
                payments=DEMO_PAYMENTS, seed=2026, rates=dict(DEMO_RATES), outcomes=DEMO_OUTCOMES
            ),
        )
        counts = manifest.row_counts
        narrator.step(
            f"The old Rails portal's database ({portal.dialect}, generated with known problems):"
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
        _carried_on(context)
    finally:
        database_drop(portal)


def _carried_on(context: StoryContext) -> None:
    narrator = context.narrator
    link = (
        ImportedListingOrderLine.objects.select_related(
            "listing", "listing__seller", "order_line__order__buyer"
        )
        .order_by("listing__legacy_id", "order_line_id")
        .first()
    )
    if link is None:
        raise RuntimeError("the legacy import linked no order to a listing")
    listing, seller = link.listing, link.listing.seller
    listings = ImportedListing.objects.filter(seller=seller)
    narrator.step(
        f"{seller.get_full_name() or seller.email} sold on the portal; now Gavel user"
        f" #{seller.pk} with {listings.count()} legacy listings in the catalogue,"
        f" e.g. {listing.title!r} at {_money(listing.price_minor, listing.currency)}"
        f" ({listing.status}): history,"
        " never put up for auction on the seller's behalf."
    )
    buyer = link.order_line.order.buyer
    context.tokens["legacy_buyer"] = str(RefreshToken.for_user(buyer).access_token)
    page = context.api("GET", "/api/v1/payments/orders/", as_user="legacy_buyer")
    statuses = Counter(order["status"] for order in page["results"])
    narrator.step(
        f"Buyer {buyer.get_full_name() or buyer.email} (Gavel user #{buyer.pk}) signs in (the"
        " demo hands out the session) and the orders API lists the portal purchases ("
        + ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
        + f"), each with its full history; one bought {listing.title!r}."
    )
