#!/usr/bin/env bash
# make serve: the API under gunicorn on $PORT (default 8000), the webhook intake process under
# uvicorn on $INTAKE_PORT (default 8001: point Stripe's endpoints, or the proxy's /webhooks/stripe/
# routes, there), a Celery worker and beat, against the services named in the environment
# (DATABASE_URL, CELERY_BROKER_URL, REDIS_URL, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT="${PORT:-8000}"
INTAKE_PORT="${INTAKE_PORT:-8001}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-gavel.settings.local}"
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$PWD/var/prometheus}"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR" var

$BIN/python scripts/db_ensure.py
$BIN/python manage.py migrate --noinput
$BIN/python manage.py collectstatic --noinput --verbosity 0

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait || true; }
trap cleanup EXIT INT TERM

$BIN/celery -A gavel worker --loglevel=INFO --queues=default,webhooks,payments,auctions \
    --concurrency="${CELERY_CONCURRENCY:-2}" &
pids+=($!)
$BIN/celery -A gavel beat --loglevel=INFO --schedule=var/celerybeat-schedule &
pids+=($!)
$BIN/gunicorn gavel.wsgi:application --bind "127.0.0.1:${PORT}" \
    --workers "${WEB_CONCURRENCY:-2}" --access-logfile - &
pids+=($!)
# Webhook intake (gavel/asgi.py): the lean intake with group commit; other paths reach Django.
$BIN/uvicorn gavel.asgi:application --host 127.0.0.1 --port "${INTAKE_PORT}" \
    --workers "${INTAKE_WORKERS:-2}" --loop uvloop --http httptools --no-access-log &
pids+=($!)
wait -n "${pids[@]}"
