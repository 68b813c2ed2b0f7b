"""``manage.py legacy_generate``: fill a database with a realistic legacy portal (tests, bench)."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from gavel.legacy.connections import database_parse, database_recreate
from gavel.legacy.generator import DEFAULT_RATES, GeneratorConfig, legacy_generate


class Command(BaseCommand):
    help = "Generate a legacy portal database (MySQL/MariaDB or PostgreSQL) with anomalies."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--url", required=True, help="mysql://… or postgres://… target")
        parser.add_argument("--payments", type=int, default=1_000)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--recreate", action="store_true", help="drop and create the database")
        parser.add_argument("--manifest", type=Path, help="write the anomaly manifest here")
        parser.add_argument(
            "--rate",
            action="append",
            default=[],
            metavar="KIND=RATE",
            help=f"anomaly rate override; kinds: {', '.join(DEFAULT_RATES)}",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        database = database_parse(options["url"])
        rates = dict(DEFAULT_RATES)
        for item in options["rate"]:
            kind, _, value = item.partition("=")
            if kind not in rates:
                raise CommandError(f"Unknown anomaly kind {kind!r}")
            rates[kind] = float(value)
        if options["recreate"]:
            database_recreate(database)
        config = GeneratorConfig(payments=options["payments"], seed=options["seed"], rates=rates)
        with tqdm(total=config.payments, unit="payment", disable=None) as bar:

            def advance(count: int) -> None:
                bar.update(count)

            manifest = legacy_generate(database=database, config=config, progress=advance)
        if options["manifest"]:
            options["manifest"].write_text(manifest.to_json())
        counts = ", ".join(f"{table} {count}" for table, count in manifest.row_counts.items())
        self.stdout.write(f"Generated {counts}")
        for kind, rows in sorted(manifest.anomalies.items()):
            self.stdout.write(f"  anomaly {kind}: {len(rows)}")
