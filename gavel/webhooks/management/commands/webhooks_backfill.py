"""``manage.py webhooks_backfill``: ingest the Stripe events missed during an outage.

    webhooks_backfill                              # platform events since the last one seen
    webhooks_backfill --account acct_1 --account acct_2
    webhooks_backfill --known-accounts             # every connected account seen so far
    webhooks_backfill --since 2026-11-20T00:00:00Z # explicit start (Stripe keeps 30 days)
    webhooks_backfill --thin                       # thin (v2) events, /v2/core/events

Events already stored are skipped by the unique event id, so a re-run is harmless; if a run
is interrupted, re-run it with the ``--since`` it printed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from gavel.webhooks.models import WebhookEvent
from gavel.webhooks.services.backfill import (
    backfill_since_default,
    events_backfill,
    thin_events_backfill,
)


def _datetime(value: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        raise CommandError(f"--since needs an ISO 8601 time with a zone, got {value!r}")
    return parsed


class Command(BaseCommand):
    help = (
        "List Stripe events (snapshot, or thin with --thin) since the last one seen and "
        "ingest the missing ones."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=_datetime, help="start (ISO 8601, with a zone)")
        parser.add_argument("--account", action="append", default=[], help="connected account")
        parser.add_argument(
            "--known-accounts",
            action="store_true",
            help="also every connected account that has sent events",
        )
        parser.add_argument("--skip-platform", action="store_true")
        parser.add_argument(
            "--thin",
            action="store_true",
            help="thin events of an event destination (/v2/core/events), since the last "
            "thin event seen",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        accounts: list[str | None] = [] if options["skip_platform"] else [None]
        accounts += options["account"]
        if options["known_accounts"]:
            known = (
                WebhookEvent.objects.exclude(account="")
                .values_list("account", flat=True)
                .distinct()
                .order_by("account")
            )
            accounts += [account for account in known if account not in accounts]
        thin: bool = options["thin"]
        backfill = thin_events_backfill if thin else events_backfill
        for account in accounts:
            since = options["since"] or backfill_since_default(account=account, thin=thin)
            label = (account or "platform") + (" thin" if thin else "")
            self.stdout.write(f"{label}: backfilling since {since.isoformat()}")
            result = backfill(since=since, account=account)
            self.stdout.write(
                f"{label}: listed {result.listed}, stored {result.stored}, "
                f"already stored {result.already_stored}, unreadable {result.unreadable}"
            )
