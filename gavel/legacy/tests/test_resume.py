"""A run killed halfway (SIGKILL, in a subprocess) resumes to the same result as a clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from gavel.legacy.importer import ImportOptions, legacy_import
from gavel.legacy.models import ImportCheckpoint, ImportRun
from gavel.legacy.tests.conftest import truncate_import
from gavel.legacy.tests.test_import import snapshot
from gavel.legacy.verify import legacy_verify

ROOT = Path(__file__).resolve().parents[3]


def _import_process(url: str, batch_size: int) -> subprocess.Popen[bytes]:
    database = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gavel.settings.test",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}"
        f"/{database['NAME']}",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "legacy_import",
            "--url",
            url,
            "--no-progress",
            "--batch-size",
            str(batch_size),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_when(process: subprocess.Popen[bytes], table: str, rows: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        checkpoint = ImportCheckpoint.objects.filter(table=table).first()
        if checkpoint is not None and checkpoint.rows_read >= rows:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            return
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.005)
    raise AssertionError(f"{table} never reached {rows} rows")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("table", "rows"),
    [
        ("transaction_transitions", 300),
        ("load:stripe_payments", 40),
        ("load:transactions", 40),  # orders, their foreign keys checked a page at a time
        ("load:transactions:tail", 20),  # the orders' last key range, in the third lane
    ],
)
def test_a_killed_run_resumes_to_the_same_result(transactional_db, mysql_source, table, rows):
    url = mysql_source.database.url
    legacy_import(database=mysql_source.database, options=ImportOptions(batch_size=50))
    clean = snapshot()
    truncate_import()

    process = _import_process(url, batch_size=20)
    _kill_when(process, table, rows)
    assert process.returncode == -signal.SIGKILL
    killed = ImportRun.objects.get()
    assert killed.status == ImportRun.Status.RUNNING
    assert not ImportCheckpoint.objects.filter(run=killed, table=table, is_finished=True).exists()

    resumed = legacy_import(database=mysql_source.database, options=ImportOptions(batch_size=20))

    assert resumed.pk == killed.pk
    assert resumed.status == ImportRun.Status.COMPLETED
    assert snapshot() == clean
    assert legacy_verify(database=mysql_source.database).difference_count == 0
