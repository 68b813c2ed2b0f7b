"""Gavel settings, split by concern and read from the environment.

``DJANGO_SETTINGS_MODULE`` picks one of:

* ``gavel.settings.local``: development, tests and ``make serve`` (the default);
* ``gavel.settings.demo``: the embedded ``make demo`` (SQLite file, in-memory broker);
* ``gavel.settings.production``: refuses to start with a missing secret or DEBUG on.
"""
