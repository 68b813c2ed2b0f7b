"""``manage.py legacy_adopt_in_flight``: hand imported authorizations to Gavel's payments."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from gavel.legacy.orders import orders_in_flight_adopt


class Command(BaseCommand):
    help = (
        "Attach each imported legacy order still authorized to its PaymentIntent (read from"
        " Stripe), so Gavel captures, confirms and pays it out. Exits 1 if any is refused."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--limit", type=int, default=500, help="orders per call")

    def handle(self, *args: Any, **options: Any) -> None:
        result = orders_in_flight_adopt(limit=options["limit"])
        self.stdout.write(
            f"adopted {len(result.adopted)}, refused {len(result.refused)},"
            f" retry later {len(result.retry_later)}"
        )
        for order_id, reason in sorted(result.refused.items()):
            self.stdout.write(f"order {order_id}: {reason}")
        if result.refused:
            raise CommandError(f"{len(result.refused)} in-flight orders refused")
