"""``manage.py ledger_reconcile``: compare the ledger with Stripe; exit 1 on any difference."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gavel.ledger.reconciliation import reconciliation_run


class Command(BaseCommand):
    help = "Reconcile the ledger with Stripe's balance transactions (platform and sellers)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--account", action="append", default=None, help="only this connected account"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = reconciliation_run(account_ids=options["account"])
        self.stdout.write(
            f"scopes: {', '.join(report.scopes)}; "
            f"balance transactions compared: {report.transactions_compared}"
        )
        for difference in report.differences:
            self.stdout.write(difference.describe())
        if not report.is_clean:
            raise CommandError(f"{len(report.differences)} difference(s)")
        self.stdout.write("reconciled: no differences")
