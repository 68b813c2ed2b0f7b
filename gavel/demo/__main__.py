"""Run the demo story, print the books' summary, then serve the API (``DEMO_SERVE=0`` exits)."""

from __future__ import annotations

import os
import sys

import django

# The demo's own throwaway admin, on 127.0.0.1 and a database made fresh every run.
DEMO_ADMIN_PASSWORD = "gavel-demo-admin"  # noqa: S105


def main() -> int:
    # Importing the gavel package set a default already; the demo wipes its database, so it
    # runs only on its own embedded settings.
    if os.environ.get("DJANGO_SETTINGS_MODULE") != "gavel.settings.demo":
        print("Run the demo with `make demo` (DJANGO_SETTINGS_MODULE=gavel.settings.demo).")
        return 2
    django.setup()

    from gavel.demo.narrator import Narrator
    from gavel.demo.runtime import database_fresh, sandbox_bound, worker_running
    from gavel.demo.story import CHAPTERS, StoryContext, books_summary

    narrator = Narrator()
    narrator.chapter("Gavel demo: an auction marketplace's money, end to end")
    from django.db import connection

    if connection.vendor == "postgresql":
        where = f"the local PostgreSQL (database {connection.settings_dict['NAME']})"
    else:
        where = "an embedded SQLite file"
    narrator.detail(f"Setup: {where}, an in-memory broker and worker, and the")
    narrator.detail("project's Stripe sandbox standing in for Stripe.")
    database_fresh()
    # One sandbox and one worker for the story and for serving afterwards, so the API served
    # on :8000 sees the same Stripe state the story made.
    with sandbox_bound() as sandbox, worker_running():
        context = StoryContext(narrator=narrator, sandbox=sandbox)
        for chapter in CHAPTERS:
            chapter(context)
        books, clean = books_summary()
        print(f"\nSUMMARY: {narrator.steps} steps, {books}.", flush=True)
        if not clean:
            return 1
        if os.environ.get("DEMO_SERVE", "1") != "0":
            _serve()
    return 0


def _serve() -> None:
    from django.core.management import call_command

    from gavel.users.models import User

    User.objects.create_superuser(email="admin@example.com", password=DEMO_ADMIN_PASSWORD)
    print("\nServing the API and the admin on http://127.0.0.1:8000 (Ctrl-C to stop).")
    print(f"  admin sign-in (demo only): admin@example.com / {DEMO_ADMIN_PASSWORD}")
    print("  API docs: http://127.0.0.1:8000/api/docs/   admin: http://127.0.0.1:8000/admin/")
    call_command("runserver", "127.0.0.1:8000", use_reloader=False, verbosity=1)


if __name__ == "__main__":
    sys.exit(main())
