"""ASGI entry point of the webhook intake process (``uvicorn gavel.asgi:application``): the
lean intake (``gavel.webhooks.intake_asgi``) in front of Django, which answers every other
path."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gavel.settings.local")

django_application = get_asgi_application()

from gavel.webhooks.intake_asgi import intake_asgi  # noqa: E402 - needs Django set up

application = intake_asgi(django_application)
