"""Legacy listings -> Gavel's catalogue of imported listings, linked from imported orders."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from rest_framework.test import APIClient

from conftest import bearer
from gavel.auctions.models import Auction
from gavel.legacy.checks import REFERENCE_ORDER_KINDS, REFERENCE_PAYMENT_KINDS
from gavel.legacy.connections import database_connect
from gavel.legacy.importer import ImportOptions, legacy_import
from gavel.legacy.models import (
    ImportCheckpoint,
    ImportedListing,
    ImportedListingOrderLine,
    ImportRun,
    LegacyAnomaly,
    LegacyIdMap,
    LegacyListing,
    LegacyOrder,
    LegacyPayment,
)
from gavel.legacy.states import AnomalyKind
from gavel.legacy.tests.conftest import (
    LegacySourceFixture,
    email_conflict_make,
    email_give_back,
)
from gavel.legacy.verify import legacy_verify
from gavel.payments.models import OrderLine
from gavel.users.models import User

pytestmark = pytest.mark.django_db

QUARANTINED_KINDS = {
    AnomalyKind.NULL_MONEY,
    AnomalyKind.UNKNOWN_CURRENCY,
    AnomalyKind.PERSON_MISSING,
}


def run_import(source: LegacySourceFixture, **options: Any) -> ImportRun:
    return legacy_import(database=source.database, options=ImportOptions(batch_size=97, **options))


def _manifest_listings(source: LegacySourceFixture, kind: str) -> set[int]:
    return {int(row_id) for table, row_id in source.manifest.anomalies[kind] if table == "listings"}


def catalogue() -> list[tuple[Any, ...]]:
    return sorted(
        ImportedListing.objects.values_list(
            "legacy_id",
            "seller__legacy_person_id",
            "title",
            "description",
            "price_minor",
            "shipping_minor",
            "currency",
            "status",
            "listed_at",
        )
    )


def test_listings_become_the_sellers_catalogue_and_orders_point_at_them(legacy_source):
    run = run_import(legacy_source)

    quarantined = set().union(
        *(_manifest_listings(legacy_source, kind) for kind in QUARANTINED_KINDS)
    )
    assert len(quarantined) == 3
    expected = [
        (
            staged.legacy_id,
            staged.author_legacy_id,
            staged.title,
            staged.description,
            staged.price_cents,
            staged.shipping_price_cents or 0,
            (staged.currency or "").strip().upper(),
            "deleted" if staged.is_deleted else "open_at_cutover" if staged.is_open else "closed",
            staged.legacy_created_at,
        )
        for staged in LegacyListing.objects.exclude(legacy_id__in=quarantined).order_by("legacy_id")
    ]
    assert catalogue() == expected
    assert len(expected) == legacy_source.manifest.row_counts["listings"] - 3
    assert {status for *_, status, _ in expected} == {"open_at_cutover", "closed"}
    # Quarantined, each with its blocking anomaly; nothing dropped silently.
    for kind in QUARANTINED_KINDS:
        (listing_id,) = _manifest_listings(legacy_source, kind)
        anomaly = LegacyAnomaly.objects.get(legacy_table="listings", legacy_id=str(listing_id))
        assert (anomaly.kind, anomaly.is_blocking) == (kind, True)
    # Flagged, loaded: a lower-case currency upper-cased; a deleted author's inactive user.
    (lower_case,) = _manifest_listings(legacy_source, AnomalyKind.CURRENCY_CASE)
    assert ImportedListing.objects.get(legacy_id=lower_case).currency == "EUR"
    (orphaned,) = _manifest_listings(legacy_source, AnomalyKind.PERSON_DELETED)
    assert ImportedListing.objects.get(legacy_id=orphaned).seller.is_active is False
    # History, not for sale: no auction was created for anybody.
    assert not Auction.objects.exists()

    # Every imported order line points at the listing its legacy transaction bought.
    lines = OrderLine.objects.filter(order__kind="legacy")
    assert lines.count() > 100
    bought = dict(LegacyOrder.objects.values_list("legacy_id", "listing_legacy_id"))
    links = ImportedListingOrderLine.objects.select_related("order_line__order", "listing")
    assert links.count() == lines.count()
    for link in links:
        transaction_id = int(str(link.order_line.order.legacy_reference).rsplit(":", 1)[1])
        assert link.listing.legacy_id == bought[transaction_id]
        assert link.listing.seller_id == link.order_line.seller_id
    # Sellers see their legacy items, and how often each sold, in the API; nobody else's.
    seller = User.objects.get(pk=links.first().listing.seller_id)  # type: ignore[union-attr]
    client = APIClient()
    client.credentials(**bearer(seller))
    response = client.get("/api/v1/legacy/listings/", {"limit": 100})
    assert response.status_code == 200
    sold = Counter(
        links.filter(listing__seller=seller).values_list("listing__legacy_id", flat=True)
    )
    assert sorted((row["legacy_id"], row["times_sold"]) for row in response.json()["results"]) == [
        (legacy_id, sold[legacy_id])
        for legacy_id in sorted(seller.imported_listings.values_list("legacy_id", flat=True))
    ]
    assert sum(sold.values()) > 0
    assert LegacyIdMap.objects.filter(kind="listing").count() == len(expected)

    steps = run.stats["steps"]
    assert steps["load:listings"] == {
        "read": legacy_source.manifest.row_counts["listings"],
        "changed": len(expected),
    }
    assert steps["load:listing_order_lines"]["changed"] == lines.count()

    report = legacy_verify(database=legacy_source.database)
    rows = [row for row in report.rows if row["section"].startswith("imported listings")]
    assert {row["section"] for row in rows} == {
        "imported listings: count by currency",
        "imported listings: price_cents by currency",
        "imported listings: shipping_price_cents by currency",
    }
    assert all(row["difference"] == 0 for row in rows)
    counts = {row["key"]: row for row in rows if row["section"].endswith("count by currency")}
    assert sum(row["legacy"] for row in counts.values()) == len(expected) + 3
    assert sum(row["quarantined"] for row in counts.values()) == 3
    assert report.difference_count == 0


def test_a_second_run_writes_no_listing_and_no_link(legacy_source):
    run_import(legacy_source)
    before = (
        catalogue(),
        sorted(ImportedListingOrderLine.objects.values_list("order_line", "listing")),
    )

    again = run_import(legacy_source)

    assert again.stats["steps"]["load:listings"]["changed"] == 0
    assert again.stats["steps"]["load:listing_order_lines"]["changed"] == 0
    after = (
        catalogue(),
        sorted(ImportedListingOrderLine.objects.values_list("order_line", "listing")),
    )
    assert after == before


def test_a_delta_updates_a_changed_listing_and_releases_a_fixed_one(mysql_source):
    run_import(mysql_source)
    listing = ImportedListing.objects.filter(status="closed").order_by("legacy_id").first()
    assert listing is not None
    (unknown,) = _manifest_listings(mysql_source, AnomalyKind.UNKNOWN_CURRENCY)
    assert not ImportedListing.objects.filter(legacy_id=unknown).exists()
    legacy = database_connect(mysql_source.database, autocommit=True)
    with legacy.cursor() as cursor:
        cursor.execute(
            "UPDATE listings SET title = 'Oak chair, restored', price_cents = price_cents + 100,"
            " updated_at = UTC_TIMESTAMP() WHERE id = %s",
            [listing.legacy_id],
        )
        cursor.execute(
            "UPDATE listings SET currency = 'EUR', updated_at = UTC_TIMESTAMP() WHERE id = %s",
            [unknown],
        )
    legacy.close()

    delta = run_import(mysql_source, mode=ImportRun.Mode.DELTA)

    # The two, and those held back for a missing author, tried again on every run.
    retried = LegacyAnomaly.objects.filter(
        kind=AnomalyKind.PERSON_MISSING, legacy_table="listings", resolved_run=None
    ).count()
    assert retried
    assert delta.stats["steps"]["load:listings"] == {"read": 2 + retried, "changed": 2}
    changed = ImportedListing.objects.get(pk=listing.pk)
    assert (changed.title, changed.price_minor) == (
        "Oak chair, restored",
        listing.price_minor + 100,
    )
    assert changed.imported_run_id == delta.pk
    assert ImportedListing.objects.get(legacy_id=unknown).currency == "EUR"
    assert legacy_verify(database=mysql_source.database).difference_count == 0


def test_a_listing_load_killed_between_pages_resumes_to_the_same_catalogue(legacy_source):
    complete = run_import(legacy_source)
    full = catalogue()
    # Forget the catalogue and the listing step's progress after its first page, as if the
    # process had died there, and mark the run unfinished: the next call resumes it.
    first_page = sorted(row[0] for row in full)[:97]
    ImportedListingOrderLine.objects.all().delete()
    ImportedListing.objects.exclude(legacy_id__in=first_page).delete()
    LegacyIdMap.objects.filter(kind="listing").delete()
    ImportCheckpoint.objects.filter(run=complete, table="load:listings").update(
        last_key=str(first_page[-1]), rows_read=97, is_finished=False
    )
    ImportCheckpoint.objects.filter(
        run=complete, table__in=["load:listing_order_lines", "load:id_map"]
    ).update(is_finished=False)
    ImportRun.objects.filter(pk=complete.pk).update(status=ImportRun.Status.RUNNING)

    resumed = run_import(legacy_source)

    assert resumed.pk == complete.pk
    assert catalogue() == full
    assert (
        ImportedListingOrderLine.objects.count()
        == OrderLine.objects.filter(order__kind="legacy").count()
    )


def test_the_listings_api_shows_only_the_signed_in_sellers_own(make_user, api_client):
    seller, other = make_user("seller@example.com"), make_user("other@example.com")
    listing = ImportedListing.objects.create(
        legacy_id=41,
        seller=seller,
        title="Oak chair",
        price_minor=4_500,
        currency="EUR",
        status=ImportedListing.Status.OPEN_AT_CUTOVER,
        listed_at="2024-05-01T10:00:00Z",
        legacy_updated_at="2024-05-02T10:00:00Z",
        imported_run_id=1,
    )

    assert api_client.get("/api/v1/legacy/listings/").status_code == 401
    api_client.credentials(**bearer(other))
    assert api_client.get("/api/v1/legacy/listings/").json()["results"] == []
    api_client.credentials(**bearer(seller))
    (row,) = api_client.get("/api/v1/legacy/listings/").json()["results"]
    assert row == {
        "id": listing.pk,
        "legacy_id": 41,
        "title": "Oak chair",
        "description": "",
        "price_minor": 4_500,
        "shipping_minor": 0,
        "currency": "EUR",
        "status": "open_at_cutover",
        "listed_at": "2024-05-01T10:00:00Z",
        "times_sold": 0,
    }


def test_listings_of_an_author_without_a_user_or_with_a_negative_price_are_quarantined(
    mysql_source, make_user
):
    legacy = database_connect(mysql_source.database, autocommit=True)
    with legacy.cursor() as cursor:
        cursor.execute(
            "SELECT l.author_id, p.email FROM listings l JOIN people p ON p.id = l.author_id"
            " WHERE l.id = 1"
        )
        author, email = cursor.fetchone()
        cursor.execute("SELECT id FROM listings WHERE author_id = %s", [author])
        authored = {int(row[0]) for row in cursor.fetchall()}
        cursor.execute(
            "SELECT MIN(id) FROM listings WHERE author_id <> %s AND price_cents IS NOT NULL",
            [author],
        )
        (negative,) = cursor.fetchone()
        cursor.execute("UPDATE listings SET price_cents = -100 WHERE id = %s", [negative])
    legacy.close()
    make_user(email)  # a Gavel user has the author's email: the author gets no user

    run_import(mysql_source)

    without_user = set(
        LegacyAnomaly.objects.filter(
            kind="seller_without_user", legacy_table="listings"
        ).values_list("legacy_id", flat=True)
    )
    assert without_user == {str(listing_id) for listing_id in authored}
    anomaly = LegacyAnomaly.objects.get(kind="negative_money", legacy_table="listings")
    assert (anomaly.legacy_id, anomaly.is_blocking) == (str(negative), True)
    assert anomaly.details["price_cents"] == -100
    assert not ImportedListing.objects.filter(legacy_id__in=[*authored, negative]).exists()
    report = legacy_verify(database=mysql_source.database)
    listing_rows = [row for row in report.rows if row["section"].startswith("imported listings")]
    assert [row for row in listing_rows if row["difference"]] == []
    assert sum(row["quarantined"] for row in listing_rows if "count" in row["section"]) == (
        len(authored) + 1 + 3
    )


def _reference_retried() -> set[int]:
    """The orders every later run loads again (``checks.orders_scope``): eligible ones that a
    reference anomaly still open names, or whose payment it names."""
    open_anomalies = LegacyAnomaly.objects.filter(resolved_run=None)
    named = {
        int(legacy_id)
        for legacy_id in open_anomalies.filter(
            legacy_table="transactions", kind__in=REFERENCE_ORDER_KINDS
        ).values_list("legacy_id", flat=True)
    }
    payments = [
        int(legacy_id)
        for legacy_id in open_anomalies.filter(
            legacy_table="stripe_payments", kind__in=REFERENCE_PAYMENT_KINDS
        ).values_list("legacy_id", flat=True)
    ]
    named |= {
        transaction
        for transaction in LegacyPayment.objects.filter(legacy_id__in=payments).values_list(
            "transaction_legacy_id", flat=True
        )
        if transaction is not None
    }
    return set(
        LegacyOrder.objects.filter(
            legacy_id__in=named, is_quarantined=False, payment_gateway="stripe"
        ).values_list("legacy_id", flat=True)
    )


def test_a_sold_listing_released_from_quarantine_by_a_delta_gets_its_order_lines(mysql_source):
    legacy = database_connect(mysql_source.database, autocommit=True)
    with legacy.cursor() as cursor:
        cursor.execute(
            "SELECT listing_id, price_cents FROM transactions JOIN listings l"
            " ON l.id = listing_id ORDER BY listing_id LIMIT 1"
        )
        listing_id, price = cursor.fetchone()
        cursor.execute("UPDATE listings SET price_cents = NULL WHERE id = %s", [listing_id])
    run_import(mysql_source)
    lines = ImportedListingOrderLine.objects.filter(listing__legacy_id=listing_id)
    sold = OrderLine.objects.filter(
        order__legacy_reference__in=[
            f"legacy:transactions:{transaction_id}"
            for transaction_id in LegacyOrder.objects.filter(
                listing_legacy_id=listing_id
            ).values_list("legacy_id", flat=True)
        ]
    )
    assert sold.count() > 0
    assert not lines.exists()
    with legacy.cursor() as cursor:
        cursor.execute(
            "UPDATE listings SET price_cents = %s, updated_at = UTC_TIMESTAMP() WHERE id = %s",
            [price, listing_id],
        )
    legacy.close()

    delta = run_import(mysql_source, mode=ImportRun.Mode.DELTA)

    # No order restaged: only those a reference anomaly still open holds (or marks) are read
    # again, and none of them changes.
    for step in ("load:transactions", "load:transactions:tail"):
        assert delta.stats["steps"][step]["changed"] == 0
    assert delta.stats["steps"]["load:transactions"]["read"] + delta.stats["steps"][
        "load:transactions:tail"
    ]["read"] == len(_reference_retried())
    assert sorted(lines.values_list("order_line_id", flat=True)) == sorted(
        sold.values_list("id", flat=True)
    )
    assert delta.stats["steps"]["load:listing_order_lines"]["changed"] == sold.count()


def test_a_sellers_listings_load_once_the_seller_has_a_user(mysql_source):
    """An author whose address another person had (``email_conflict``) gets no user, so their
    listings wait (``seller_without_user``). Once the portal fixes the address, the next delta
    loads them, though the listings themselves did not change, and links the orders."""
    author, own_email = email_conflict_make(
        mysql_source.database,
        having="EXISTS (SELECT 1 FROM listings l WHERE l.author_id = p.id AND l.deleted = 0"
        " AND l.price_cents >= 0 AND l.currency IN ('EUR', 'USD', 'GBP'))",
    )
    run_import(mysql_source)
    waiting = set(
        LegacyAnomaly.objects.filter(
            kind=AnomalyKind.SELLER_WITHOUT_USER, legacy_table="listings"
        ).values_list("legacy_id", flat=True)
    )
    theirs = {
        str(legacy_id)
        for legacy_id in LegacyListing.objects.filter(author_legacy_id=author).values_list(
            "legacy_id", flat=True
        )
    }
    assert theirs & waiting
    assert not ImportedListing.objects.filter(seller__legacy_person_id=author).exists()

    email_give_back(mysql_source.database, author, own_email)
    delta = run_import(mysql_source, mode=ImportRun.Mode.DELTA)

    assert delta.status == ImportRun.Status.COMPLETED
    loaded = set(
        ImportedListing.objects.filter(seller__legacy_person_id=author).values_list(
            "legacy_id", flat=True
        )
    )
    held_otherwise = set(
        LegacyAnomaly.objects.filter(legacy_table="listings", is_blocking=True)
        .exclude(kind=AnomalyKind.SELLER_WITHOUT_USER)
        .values_list("legacy_id", flat=True)
    )
    expected = {int(legacy_id) for legacy_id in (theirs & waiting) - held_otherwise}
    assert expected
    assert expected <= loaded
    assert set(
        LegacyAnomaly.objects.filter(
            kind=AnomalyKind.SELLER_WITHOUT_USER, legacy_id__in=[str(i) for i in expected]
        ).values_list("resolved_run", flat=True)
    ) == {delta.pk}
    sold = OrderLine.objects.filter(order__kind="legacy", seller__legacy_person_id=author)
    assert (
        not sold.filter(imported_listing_link__isnull=True)
        .exclude(
            order__legacy_reference__in=[
                f"legacy:transactions:{legacy_id}"
                for legacy_id in LegacyOrder.objects.exclude(
                    listing_legacy_id__in=loaded
                ).values_list("legacy_id", flat=True)
            ]
        )
        .exists()
    )
    assert legacy_verify(database=mysql_source.database).difference_count == 0
