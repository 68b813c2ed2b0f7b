"""``manage.py ledger_reconcile``: compare the ledger with Stripe; exit 1 on any difference."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gavel.ledger.reconciliation import reconciliation_run
from gavel.settings.env import instant_parse


class Command(BaseCommand):
    help = "Reconcile the ledger with Stripe's balance transactions (platform and sellers)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--account", action="append", default=None, help="only this connected account"
        )
        parser.add_argument(
            "--since",
            default=None,
            help="only Stripe's movements from this ISO 8601 instant with its offset"
            " (default: LEDGER_RECONCILE_SINCE; unset: all of them)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        since: datetime | None = None
        if options["since"]:
            try:
                since = instant_parse(options["since"])
            except ValueError as error:
                raise CommandError(f"--since must be an ISO 8601 instant: {error}") from error
        report = reconciliation_run(account_ids=options["account"], since=since)
        window = "all" if report.since is None else f"from {report.since.isoformat()}"
        self.stdout.write(
            f"scopes: {', '.join(report.scopes)}; window: {window}; "
            f"balance transactions compared: {report.transactions_compared}"
        )
        for difference in report.differences:
            self.stdout.write(difference.describe())
        if not report.is_clean:
            raise CommandError(f"{len(report.differences)} difference(s)")
        self.stdout.write("reconciled: no differences")
