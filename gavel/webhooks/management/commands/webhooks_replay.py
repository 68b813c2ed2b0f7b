"""``manage.py webhooks_replay``: replay dead-lettered or ignored Stripe events.

webhooks_replay --event evt_1 --event evt_2       # one by one
webhooks_replay --status dead --type charge.refunded --since 2026-11-01T00:00:00Z
webhooks_replay --status dead --dry-run           # list what would be replayed
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from gavel.webhooks.models import WebhookEvent
from gavel.webhooks.selectors import events_replayable
from gavel.webhooks.services.replay import events_replay


def _datetime(value: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        raise CommandError(f"--since needs an ISO 8601 time with a zone, got {value!r}")
    return parsed


class Command(BaseCommand):
    help = "Replay dead-lettered or ignored Stripe events (handlers are idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--event", action="append", default=[], help="Stripe event id")
        parser.add_argument(
            "--status",
            action="append",
            choices=[str(status) for status in WebhookEvent.REPLAYABLE],
            help="dead, ignored (default: both)",
        )
        parser.add_argument("--type", help="event type, e.g. charge.refunded")
        parser.add_argument("--since", type=_datetime, help="received at or after (ISO 8601)")
        parser.add_argument("--limit", type=int, default=10_000)
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if not (options["event"] or options["status"] or options["type"] or options["since"]):
            raise CommandError("Name events with --event, or select with --status/--type/--since")
        events = events_replayable(
            stripe_event_ids=options["event"],
            statuses=options["status"],
            event_type=options["type"],
            since=options["since"],
        )[: options["limit"]]
        selected = list(events.values_list("pk", "stripe_event_id", "event_type", "status"))
        for _, stripe_event_id, event_type, status in selected:
            self.stdout.write(f"{stripe_event_id} {event_type} {status}")
        if options["dry_run"]:
            self.stdout.write(f"{len(selected)} event(s) would be replayed")
            return
        replayed = events_replay(event_pks=[pk for pk, *_ in selected])
        self.stdout.write(self.style.SUCCESS(f"{replayed} event(s) replayed"))
