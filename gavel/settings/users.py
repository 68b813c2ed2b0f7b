"""Members: password reset by emailed link (imported legacy users have no password) and email."""

from __future__ import annotations

from gavel.settings.env import env_bool, env_int, env_str

# The link in the reset email: the app's page that asks for a new password and posts
# {uid, token, new_password} to /api/v1/auth/password-reset/confirm/. "{uid}" and "{token}" are
# replaced; the apps' universal link or the Next.js page.
PASSWORD_RESET_URL = env_str(
    "PASSWORD_RESET_URL", "https://app.gavel.example/reset-password?uid={uid}&token={token}"
)
# How long a reset link works (Django's setting; a link also dies once the password changes).
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT_SECONDS", default=3 * 24 * 3600)
# At most one reset email per member in this window, whatever is asked: no mailbox flooding.
PASSWORD_RESET_MIN_INTERVAL_SECONDS = env_int("PASSWORD_RESET_MIN_INTERVAL_SECONDS", default=60)

# Outgoing email (Django's settings). The console backend prints mails: set SMTP in production.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT_SECONDS", default=10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Gavel <no-reply@gavel.example>")
