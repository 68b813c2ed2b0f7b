"""Celery: queues, late acknowledgement and the broker's redelivery timing."""

from __future__ import annotations

from kombu import Queue

from gavel.settings.env import env_bool, env_int, env_str

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/1")
# RabbitMQ is the supported alternative broker; the suite proves the outbox and worker on it.
RABBITMQ_URL = env_str("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [
    Queue("default"),
    Queue("webhooks"),
    Queue("payments"),
    Queue("auctions"),
]
# Every task is idempotent, so a message is acknowledged only after the task has run, and is
# redelivered when its worker dies. One message at a time per worker process.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Redis redelivers a message not acknowledged within the visibility timeout. Kombu's default
# is one hour; our tasks finish in seconds, so five minutes brings a task lost with its worker
# back quickly while leaving a wide margin over the slowest task (time limit below).
CELERY_VISIBILITY_TIMEOUT_SECONDS = env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", default=300)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT_SECONDS,
    # Scan for unacknowledged messages to restore every 10 s, every time (default: every
    # tenth interval), so the visibility timeout above is what bounds redelivery.
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
}
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT_SECONDS", default=120)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 10
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing must fail fast when the broker is down: the outbox keeps the work.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY = False

# How long an outbox row may wait before the sweeper relays it again.
OUTBOX_RELAY_AFTER_SECONDS = env_int("OUTBOX_RELAY_AFTER_SECONDS", default=30)

CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "outbox-sweep": {
        "task": "gavel.common.tasks.outbox_sweep",
        "schedule": 15.0,
        "options": {"queue": "default"},
    },
    "webhooks-sweep": {
        "task": "gavel.webhooks.tasks.webhook_events_sweep",
        "schedule": float(env_int("WEBHOOK_SWEEP_INTERVAL_SECONDS", default=15)),
        "options": {"queue": "webhooks"},
    },
    "users-expired-tokens-flush": {
        "task": "gavel.users.tasks.expired_tokens_flush",
        "schedule": 3600.0,
        "options": {"queue": "default"},
    },
    "idempotency-keys-purge": {
        "task": "gavel.common.tasks.idempotency_keys_purge",
        "schedule": 3600.0,
        "options": {"queue": "default"},
    },
    "connect-accounts-janitor": {
        "task": "gavel.connect.tasks.connected_accounts_janitor",
        "schedule": float(env_int("CONNECT_JANITOR_INTERVAL_SECONDS", default=300)),
        "options": {"queue": "default"},
    },
    "auctions-close-scan": {
        "task": "gavel.auctions.tasks.auctions_close_scan",
        "schedule": float(env_int("AUCTIONS_CLOSE_SCAN_SECONDS", default=10)),
        "options": {"queue": "auctions"},
    },
    "auctions-sales-scan": {
        "task": "gavel.auctions.tasks.sales_deadlines_scan",
        "schedule": float(env_int("AUCTIONS_SALES_SCAN_SECONDS", default=300)),
        "options": {"queue": "auctions"},
    },
    "auctions-customers-janitor": {
        "task": "gavel.auctions.tasks.buyer_customers_janitor",
        "schedule": float(env_int("AUCTIONS_CUSTOMERS_JANITOR_SECONDS", default=300)),
        "options": {"queue": "default"},
    },
    "payments-janitor": {
        "task": "gavel.payments.tasks.janitor",
        "schedule": float(env_int("PAYMENTS_JANITOR_INTERVAL_SECONDS", default=300)),
        "options": {"queue": "payments"},
    },
    "payments-transfers-release": {
        "task": "gavel.payments.tasks.transfers_release_due",
        "schedule": float(env_int("PAYMENTS_RELEASE_SCAN_SECONDS", default=900)),
        "options": {"queue": "payments"},
    },
    "payments-holds-maintain": {
        "task": "gavel.payments.tasks.holds_maintain",
        "schedule": float(env_int("PAYMENTS_HOLDS_SCAN_SECONDS", default=3_600)),
        "options": {"queue": "payments"},
    },
    "payouts-run": {
        "task": "gavel.payouts.tasks.payout_run",
        "schedule": float(env_int("PAYOUTS_RUN_INTERVAL_SECONDS", default=86_400)),
        "options": {"queue": "payments"},
    },
    "ledger-reconcile": {
        "task": "gavel.payments.tasks.reconcile",
        "schedule": float(env_int("RECONCILIATION_INTERVAL_SECONDS", default=86_400)),
        "options": {"queue": "payments"},
    },
}
