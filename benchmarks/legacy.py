"""Legacy import throughput: payments imported per second, verification included.

Generates a legacy portal (default: MariaDB, one million ``stripe_payments`` rows with every
anomaly), imports it into the benchmark's throwaway Gavel database, verifies it (zero
differences required) and prints payments / (import + verification seconds), with the time of
each step. Figures are printed, never asserted.

Environment:
  LEGACY_BENCH_PAYMENTS   stripe_payments rows (default 1000000; e.g. 50000 for a quick run)
  LEGACY_BENCH_URL        legacy database to (re)create (default mysql://root@127.0.0.1:3306/
                          gavel_legacy_bench; postgres://… works too)
  LEGACY_BENCH_REUSE      1: keep an already generated database of the same size and seed
  LEGACY_BENCH_BATCH      rows per page (default: the importer's, LEGACY_IMPORT_BATCH_SIZE)
  LEGACY_BENCH_DELTA      1: then move the portal on (``legacy_advance``: pay out confirmed
                          payments, capture preauthorized ones), time the delta import and its
                          verification (the cutover's freeze window), and empty the legacy
                          database afterwards (it no longer matches its seed)
"""

from __future__ import annotations

import os
import resource
import time

TARGET_PER_SECOND = 10_000
SEED = 1
CEILING_ROWS = 2_000_000


def _rows_inserted() -> int:
    """Rows inserted into this (fresh) database's tables so far, temporary ones excluded."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(
            "SELECT COALESCE(sum(n_tup_ins), 0) FROM pg_stat_user_tables"
            " WHERE schemaname = 'public'"
        )
        (rows,) = cursor.fetchone()
    return int(rows)


def _cpu_busy_seconds() -> float | None:
    """CPU-seconds the whole machine has spent busy since boot (every process: the import,
    both database servers, anything else), from Linux's /proc/stat; None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    ticks = [int(value) for value in fields[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU-seconds (user and system) this process has spent, all its threads together."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _insert_ceiling() -> float:
    """Rows per second one connection inserts into a bare table with a primary key, on this
    server now: the yardstick the import's own row rate is printed against."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE _ceiling (id bigint PRIMARY KEY, entry bigint, account bigint,"
            " amount bigint, currency char(3))"
        )
        started = time.perf_counter()
        cursor.execute(
            "INSERT INTO _ceiling SELECT i, i / 3, i %% 4000, i * 7, 'EUR'"
            " FROM generate_series(1, %s) i",
            [CEILING_ROWS],
        )
        seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE _ceiling")
    return CEILING_ROWS / seconds


def _existing_payments(database: object) -> int:
    """Rows in an already generated legacy database, -1 when there is none."""
    import psycopg
    import pymysql

    from gavel.legacy.connections import LegacyDatabase, database_connect

    assert isinstance(database, LegacyDatabase)
    try:
        connection = database_connect(database)
    except (pymysql.MySQLError, psycopg.Error):
        return -1
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM stripe_payments")
            (count,) = cursor.fetchone()
        return int(count)
    except (pymysql.MySQLError, psycopg.Error):
        return -1
    finally:
        connection.close()


def main() -> None:
    from gavel.celery import app
    from gavel.legacy.connections import database_parse, database_recreate
    from gavel.legacy.generator import GeneratorConfig, legacy_generate
    from gavel.legacy.importer import ImportOptions, legacy_import
    from gavel.legacy.verify import legacy_verify

    # The import's outbox publishes a Stripe refresh task per batch of connected accounts,
    # naming accounts of this run's throwaway database: an in-process broker that ends with
    # the run takes them, not one that a worker on the developer's own database reads.
    app.conf.update(broker_url="memory://")
    payments = int(os.environ.get("LEGACY_BENCH_PAYMENTS", "1000000"))
    url = os.environ.get("LEGACY_BENCH_URL", "mysql://root@127.0.0.1:3306/gavel_legacy_bench")
    batch = int(os.environ.get("LEGACY_BENCH_BATCH", "0"))  # 0: the importer's own default
    database = database_parse(url)
    reuse = os.environ.get("LEGACY_BENCH_REUSE") == "1"
    if reuse and _existing_payments(database) == payments:
        print(f"legacy source: reusing {url} ({payments} payments)")
    else:
        started = time.perf_counter()
        database_recreate(database)
        manifest = legacy_generate(
            database=database, config=GeneratorConfig(payments=payments, seed=SEED)
        )
        seconds = time.perf_counter() - started
        rows = sum(manifest.row_counts.values())
        print(f"generated {database.dialect} legacy DB: {rows} rows in {seconds:.1f}s")
        print("  " + ", ".join(f"{table} {n}" for table, n in manifest.row_counts.items()))

    inserted_before = _rows_inserted()
    busy_before = _cpu_busy_seconds()
    own_before = _own_cpu_seconds()
    started = time.perf_counter()
    run = legacy_import(database=database, options=ImportOptions(batch_size=batch))
    import_seconds = time.perf_counter() - started
    inserted = _rows_inserted() - inserted_before
    started = time.perf_counter()
    report = legacy_verify(database=database)
    verify_seconds = time.perf_counter() - started
    busy_after = _cpu_busy_seconds()
    own = _own_cpu_seconds() - own_before
    # After the import: its temporary table would keep the import's own temp_buffers setting
    # from taking on this connection.
    ceiling = _insert_ceiling()

    total = import_seconds + verify_seconds
    rate = payments / total
    print(f"import: {import_seconds:.1f}s, verification: {verify_seconds:.1f}s")
    for step, seconds in run.stats["seconds"].items():
        rows_read = run.stats["steps"].get(step, {}).get("read", 0)
        print(f"  {step:<26} {seconds:8.1f}s  {rows_read:>10} rows")
    print(
        f"anomalies: {sum(run.stats['new_anomalies'].values())}, verification differences:"
        f" {report.difference_count} ({len(report.rows)} rows compared)"
    )
    print(
        f"rows the import inserted: {inserted:,} ({inserted / import_seconds:,.0f}/s); one"
        f" connection's bare insert ceiling on this server, same run: {ceiling:,.0f} rows/s"
        f" (import = {inserted / import_seconds / ceiling:.0%} of it)"
    )
    if busy_before is not None and busy_after is not None:
        # What the figure is bound by: a box whose cores are all busy goes no faster by
        # ordering its work differently, only by doing less of it (or having more cores).
        busy = busy_after - busy_before
        cores = os.cpu_count() or 1
        print(
            f"machine CPU over import + verification: {busy:,.0f} busy CPU-seconds of"
            f" {cores} cores x {total:.1f}s ({busy / (cores * total):.0%} busy),"
            f" {busy / payments * 1e6:,.0f} CPU-microseconds per payment; of which this"
            f" Python process (every lane's thread) {own:,.0f} ({own / busy:.0%}), the rest"
            " mostly the database servers"
        )
    print(
        f"payments imported per second (with verification): {rate:,.0f}"
        f" (target {TARGET_PER_SECOND:,}: {'met' if rate >= TARGET_PER_SECOND else 'NOT met'})"
    )
    if os.environ.get("LEGACY_BENCH_DELTA") == "1":
        _delta(database, import_seconds=import_seconds)


def _delta(database: object, *, import_seconds: float) -> None:
    """The final sync: the portal moves on, a delta import takes what changed, verification."""
    from datetime import UTC, datetime

    from gavel.legacy.connections import LegacyDatabase, database_recreate
    from gavel.legacy.generator import legacy_advance
    from gavel.legacy.importer import ImportOptions, legacy_import
    from gavel.legacy.models import ImportRun
    from gavel.legacy.verify import legacy_verify

    assert isinstance(database, LegacyDatabase)
    changed = legacy_advance(database=database, at=datetime.now(UTC))
    moved = sum(len(ids) for ids in changed.values())
    started = time.perf_counter()
    run = legacy_import(database=database, options=ImportOptions(mode=ImportRun.Mode.DELTA))
    delta_seconds = time.perf_counter() - started
    started = time.perf_counter()
    report = legacy_verify(database=database)
    verify_seconds = time.perf_counter() - started
    database_recreate(database)  # moved on: no longer the seed's portal
    print(
        f"delta: the portal moved {moved:,} payments on"
        f" ({', '.join(f'{step} {len(ids):,}' for step, ids in changed.items())});"
        f" delta import {delta_seconds:.1f}s, verification {verify_seconds:.1f}s,"
        f" {report.difference_count} differences; the first import took {import_seconds:.1f}s"
        f" (delta / first: {delta_seconds / import_seconds:.0%})"
    )
    for step, seconds in run.stats["seconds"].items():
        if seconds >= 0.5:
            print(f"  {step:<26} {seconds:8.1f}s")
