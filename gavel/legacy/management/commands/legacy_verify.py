"""``manage.py legacy_verify``: legacy vs Gavel side by side; exit status 1 on any difference."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gavel.legacy.connections import LegacyConnectionError, database_parse
from gavel.legacy.verify import legacy_verify

SELLER_SECTIONS = ("seller transferred", "seller pending")


class Command(BaseCommand):
    help = "Verify the import: counts, money sums and seller balances, legacy vs Gavel."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--url", help="overrides LEGACY_DATABASE_URL")
        parser.add_argument("--sellers", action="store_true", help="print every seller's rows")
        parser.add_argument(
            "--stripe-sample",
            type=int,
            default=0,
            help="also read this many payments' PaymentIntents, charges (on the platform, or"
            " on the seller's account for a py_), transfers and payouts,"
            " and this many Stripe accounts rows' connected accounts and customers, from Stripe"
            " and compare them",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            database = database_parse(options["url"] or settings.LEGACY_DATABASE_URL)
        except LegacyConnectionError as error:
            raise CommandError(str(error)) from error
        report = legacy_verify(database=database, stripe_sample=options["stripe_sample"])
        self.stdout.write(
            f"{'section':<52} {'key':<34} {'legacy':>14} {'gavel':>14}"
            f" {'quarantined':>12} {'diff':>6}"
        )
        seller_rows = 0
        for row in report.rows:
            is_seller_row = row["section"].startswith(SELLER_SECTIONS)
            seller_rows += is_seller_row
            if is_seller_row and not options["sellers"] and row["difference"] == 0:
                continue
            self.stdout.write(
                f"{row['section'][:52]:<52} {row['key'][:34]:<34} {row['legacy']:>14}"
                f" {row['gavel']:>14} {row['quarantined']:>12} {row['difference']:>6}"
            )
            if row["difference"] and len(row["key"]) > 34:  # e.g. a Stripe object's problems
                self.stdout.write(f"    {row['key']}")
        self.stdout.write(
            f"{len(report.rows)} rows compared ({seller_rows} per seller);"
            f" {report.difference_count} differences (report #{report.pk})"
        )
        if report.difference_count:
            raise CommandError(f"{report.difference_count} differences")
