"""The management commands and the admin views."""

from __future__ import annotations

import json
import os
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from gavel.legacy.connections import database_drop, database_parse
from gavel.legacy.models import ImportRun, LegacyAnomaly, VerificationReport
from gavel.legacy.tests.conftest import SERVERS

pytestmark = pytest.mark.django_db


def test_generate_import_verify_from_the_command_line(tmp_path, settings):
    url = database_parse(SERVERS["postgres"]).with_name(f"gavel_legacy_cmd_{os.getpid()}").url
    manifest_path = tmp_path / "manifest.json"
    out = StringIO()
    call_command(
        "legacy_generate",
        "--url",
        url,
        "--recreate",
        "--payments",
        "80",
        "--manifest",
        str(manifest_path),
        "--rate",
        "null_money=0.05",
        stdout=out,
    )
    manifest = json.loads(manifest_path.read_text())
    assert manifest["row_counts"]["stripe_payments"] == 80
    # The rate applies to payments and to listings (one listing without a price).
    null_money = sorted(table for table, _ in manifest["anomalies"]["null_money"])
    assert null_money == ["listings"] + ["stripe_payments"] * 4
    assert "anomaly null_money: 5" in out.getvalue()

    settings.LEGACY_DATABASE_URL = url
    out = StringIO()
    call_command("legacy_import", "--no-progress", "--batch-size", "30", stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["steps"]["stripe_payments"] == {"read": 80, "changed": 80}
    assert summary["new_anomalies"]["null_money"] == 5

    out = StringIO()
    call_command("legacy_verify", "--sellers", stdout=out)
    assert "0 differences" in out.getvalue()

    dry = StringIO()
    call_command(
        "legacy_import", "--dry-run", "--delta", "--since", "2020-01-01T00:00:00", stdout=dry
    )
    assert json.loads(dry.getvalue())["dry_run"] is True
    assert ImportRun.objects.count() == 1

    # A difference fails the command (exit status 1) and is listed.
    LegacyAnomaly.objects.all().delete()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM legacy_legacylisting WHERE legacy_id = 1")
    with pytest.raises(CommandError, match="differences"):
        call_command("legacy_verify", stdout=StringIO())
    database_drop(database_parse(url))


def test_commands_refuse_bad_input(settings):
    settings.LEGACY_DATABASE_URL = ""
    with pytest.raises(CommandError, match="not set"):
        call_command("legacy_import", stdout=StringIO())
    with pytest.raises(CommandError, match="not set"):
        call_command("legacy_verify", stdout=StringIO())
    with pytest.raises(CommandError, match="Unknown anomaly"):
        call_command("legacy_generate", "--url", SERVERS["mysql"], "--rate", "nope=1")


def test_admin_shows_the_verification_side_by_side(admin_client):
    report = VerificationReport.objects.create(
        difference_count=1,
        rows=[
            {"section": "rows", "key": "people", "legacy": 3, "gavel": 3, "quarantined": 0,
             "difference": 0},
            {"section": "seller pending (net)", "key": "p:EUR", "legacy": 5, "gavel": 5,
             "quarantined": 0, "difference": 0},
            {"section": "seller transferred (net)", "key": "q:EUR", "legacy": 7, "gavel": 5,
             "quarantined": 0, "difference": 2},
        ],
    )  # fmt: skip
    page = admin_client.get(reverse("admin:legacy_verificationreport_change", args=[report.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "1 per-seller rows agree and are not listed." in body
    assert "q:EUR" in body
    assert "p:EUR" not in body
    for name in (
        "importrun",
        "legacyanomaly",
        "legacyidmap",
        "verificationreport",
        "deferredindex",
    ):
        assert admin_client.get(reverse(f"admin:legacy_{name}_changelist")).status_code == 200
    # The open anomalies (no run resolved them), as the runbook reviews them.
    anomalies = reverse("admin:legacy_legacyanomaly_changelist")
    for empty in ("0", "1"):
        assert admin_client.get(anomalies, {"resolved_run__isempty": empty}).status_code == 200
    assert admin_client.get(reverse("admin:legacy_verificationreport_add")).status_code == 403
