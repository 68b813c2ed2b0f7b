"""Production: refuses to start with a missing secret or DEBUG on."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from gavel.settings.base import *  # noqa: F403
from gavel.settings.env import env_bool, env_int

_REQUIRED = ("SECRET_KEY", "STRIPE_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL")
_missing = [name for name in _REQUIRED if not os.environ.get(name)]
# The parsed list: a value of blanks and commas is no secret either.
if not STRIPE_WEBHOOK_SECRETS:  # noqa: F405
    _missing.append("STRIPE_WEBHOOK_SECRETS")
# Forwarding to the legacy portal signs each event with this secret; never with an empty one.
if LEGACY_WEBHOOK_URL and not LEGACY_WEBHOOK_SECRET:  # noqa: F405
    _missing.append("LEGACY_WEBHOOK_SECRET")
if not os.environ.get("ALLOWED_HOSTS"):
    _missing.append("ALLOWED_HOSTS")
if _missing:
    raise ImproperlyConfigured(f"Missing required environment: {', '.join(sorted(_missing))}")
if DEBUG:  # noqa: F405
    raise ImproperlyConfigured("DEBUG must be off in production")
if (
    len(SECRET_KEY) < 50  # noqa: F405
    or len(set(SECRET_KEY)) < 5  # noqa: F405
    or SECRET_KEY.startswith(("dev-insecure", "django-insecure"))  # noqa: F405
):
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 random characters")
if STRIPE_API_BASE == "inprocess":  # noqa: F405
    raise ImproperlyConfigured("STRIPE_API_BASE=inprocess is for tests and the demo only")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
