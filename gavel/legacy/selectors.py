"""Reads over imported legacy data."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from gavel.legacy.models import ImportedListing
from gavel.users.models import User


def imported_listings_for_seller(*, user: User) -> QuerySet[ImportedListing]:
    """The seller's own listings from the legacy portal, with how many imported order lines
    bought each (``times_sold``)."""
    return ImportedListing.objects.filter(seller=user).annotate(
        times_sold=Count("order_line_links")
    )
