from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from gavel.common.context import request_id_var, user_id_var
from gavel.observability.logging import ContextFilter, ScrubFilter
from gavel.observability.scrub import REDACTED, scrub_text, scrub_value
from gavel.observability.sentry import sentry_before_send

REPO = Path(__file__).resolve().parents[3]
VISA = "4242424242424242"


def test_card_numbers_and_secrets_are_scrubbed_from_text() -> None:
    text = (
        f"card {VISA} and 4242 4242 4242 4242 and 4000-0566-5566-5556, "
        "order 1234567890123 stays, key sk_live_abc123 whsec_xyz Bearer eyJ.a.b"
    )
    scrubbed = scrub_text(text)
    assert "4242" not in scrubbed
    assert "5556" not in scrubbed
    assert scrubbed.count("[card redacted]") == 3
    assert "1234567890123" in scrubbed  # not Luhn-valid: an order number, kept
    assert "sk_live_abc123" not in scrubbed
    assert "whsec_xyz" not in scrubbed
    assert "eyJ.a.b" not in scrubbed


def test_sensitive_keys_lose_their_values_at_any_depth() -> None:
    event = {
        "request": {
            "headers": {"Authorization": "Bearer abc", "Stripe-Signature": "t=1,v1=x"},
            "data": {"password": "hunter2", "note": f"pay with {VISA}", "nested": [{"cvc": "123"}]},
        }
    }
    scrubbed = scrub_value(event)
    assert scrubbed["request"]["headers"] == {
        "Authorization": REDACTED,
        "Stripe-Signature": REDACTED,
    }
    assert scrubbed["request"]["data"]["password"] == REDACTED
    assert scrubbed["request"]["data"]["note"] == "pay with [card redacted]"
    assert scrubbed["request"]["data"]["nested"] == [{"cvc": REDACTED}]
    assert sentry_before_send(event, {}) == scrubbed


def test_json_logs_carry_context_and_are_scrubbed() -> None:
    from pythonjsonlogger.json import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(ContextFilter())
    handler.addFilter(ScrubFilter())
    logger = logging.getLogger("gavel.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    # Other tests start Celery workers, which reconfigure logging levels process-wide.
    logger.setLevel(logging.INFO)
    logger.disabled = False
    request_token = request_id_var.set("req_test")
    user_token = user_id_var.set(7)
    try:
        logger.warning("paid with %s", VISA, extra={"detail": {"secret": "s", "ok": 1}})
    finally:
        request_id_var.reset(request_token)
        user_id_var.reset(user_token)
        logger.removeHandler(handler)
    record = json.loads(stream.getvalue())
    assert record["message"] == "paid with [card redacted]"
    assert record["request_id"] == "req_test"
    assert record["user_id"] == 7
    assert record["detail"] == {"secret": REDACTED, "ok": 1}


@pytest.mark.django_db
def test_health_ready_and_metrics() -> None:
    client = Client()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert b"gavel_http_requests_total" in metrics.content


@pytest.mark.django_db
def test_metrics_need_the_bearer_token_when_one_is_configured(settings: Any) -> None:
    settings.METRICS_BEARER_TOKEN = "metrics-token-123"
    client = Client()
    denied = client.get("/metrics")
    assert denied.status_code == 401
    assert denied.json()["error"]["type"] == "authentication_error"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    allowed = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-123")
    assert allowed.status_code == 200


@pytest.mark.django_db
def test_readyz_reports_an_unreachable_broker(settings: Any, monkeypatch: Any) -> None:
    from gavel.celery import app

    unreachable = "redis://127.0.0.1:1/0"
    original = app.conf.broker_url  # read before the environment changes: Celery prefers it
    monkeypatch.setenv("CELERY_BROKER_URL", unreachable)
    app.conf.update(broker_url=unreachable)
    try:
        response = Client().get("/readyz")
    finally:
        app.conf.update(broker_url=original)
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["broker"] != "ok"


def _production_check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("STRIPE_")}
    clean.update(DJANGO_SETTINGS_MODULE="gavel.settings.production", **env)
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "check", *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )


PRODUCTION_ENV = {
    "SECRET_KEY": "pr0duction-Secret-key-for-tests-9f8e7d6c5b4a3210-ZYXWVUTSRQ",
    "STRIPE_SECRET_KEY": "sk_live_fromtheenvironment",
    "STRIPE_WEBHOOK_SECRETS": "whsec_a,whsec_b",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/gavel",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/1",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "ALLOWED_HOSTS": "gavel.example.com",
    "DEBUG": "0",
}


@pytest.mark.slow
def test_production_settings_pass_check_deploy() -> None:
    result = _production_check(PRODUCTION_ENV, "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"SECRET_KEY": ""}, "Missing required environment: SECRET_KEY"),
        ({"STRIPE_SECRET_KEY": ""}, "STRIPE_SECRET_KEY"),
        ({"DEBUG": "1"}, "DEBUG must be off in production"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be at least 50"),
    ],
)
def test_production_settings_refuse_to_start_when_unsafe(
    change: dict[str, str], message: str
) -> None:
    result = _production_check({**PRODUCTION_ENV, **change})
    assert result.returncode != 0
    assert message in result.stderr
