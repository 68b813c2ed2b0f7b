"""``manage.py legacy_import``: import (or resume, or delta-sync) the legacy portal."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gavel.legacy.connections import LegacyConnectionError, database_parse
from gavel.legacy.importer import ImportOptions, import_summary, legacy_import
from gavel.legacy.indexes import indexes_restore
from gavel.legacy.models import ImportRun


class Command(BaseCommand):
    help = "Import the legacy portal's database (LEGACY_DATABASE_URL) into Gavel."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--url", help="overrides LEGACY_DATABASE_URL")
        parser.add_argument("--delta", action="store_true", help="only rows changed since --since")
        parser.add_argument(
            "--since",
            type=datetime.fromisoformat,
            help="delta watermark (ISO 8601, UTC); default: the last completed run's",
        )
        parser.add_argument("--dry-run", action="store_true", help="do everything, roll back")
        parser.add_argument("--fresh", action="store_true", help="do not resume an unfinished run")
        parser.add_argument("--batch-size", type=int, default=0)
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument(
            "--ledger-via-services",
            action="store_true",
            help="post with ledger.services.entry_post one entry at a time (slow reference path)",
        )
        parser.add_argument(
            "--restore-indexes",
            action="store_true",
            help="only restore the indexes and foreign keys an unfinished first import deferred"
            " (ADR 0011, ADR 0012)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["restore_indexes"]:
            built = indexes_restore()
            self.stdout.write(
                json.dumps({"built": {index.name: round(index.seconds, 3) for index in built}})
            )
            return
        try:
            database = database_parse(options["url"] or settings.LEGACY_DATABASE_URL)
        except LegacyConnectionError as error:
            raise CommandError(str(error)) from error
        since = options["since"]
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        run = legacy_import(
            database=database,
            options=ImportOptions(
                mode=ImportRun.Mode.DELTA if options["delta"] else ImportRun.Mode.FULL,
                is_dry_run=options["dry_run"],
                batch_size=options["batch_size"],
                since=since,
                is_resumable=not options["fresh"],
                show_progress=not options["no_progress"],
                ledger_via_services=options["ledger_via_services"],
            ),
        )
        self.stdout.write(json.dumps(import_summary(run), indent=2, default=str))
