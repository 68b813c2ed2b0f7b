"""``python -m benchmarks [name ...]``: run every benchmark module (or the named ones) in turn.

Each module in this package that defines ``main() -> None`` is a benchmark. Figures are printed,
never asserted: a benchmark measures its subject beside a ceiling measured in the same run and
prints the ratio.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time

import django


def _modules() -> list[str]:
    package_dir = os.path.dirname(__file__)
    return sorted(
        info.name for info in pkgutil.iter_modules([package_dir]) if not info.name.startswith("_")
    )


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gavel.settings.local")
    django.setup()
    from django.db import connection

    # A throwaway database of this run's own, migrated fresh and dropped afterwards.
    original_name = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"gavel_bench_{os.getpid()}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        return _run(argv)
    finally:
        connection.creation.destroy_test_db(original_name, verbosity=0)


def _run(argv: list[str]) -> int:
    wanted = argv or _modules()
    for name in wanted:
        module = importlib.import_module(f"benchmarks.{name}")
        runner = getattr(module, "main", None)
        if runner is None:
            continue
        print(f"\n=== benchmark: {name} ===", flush=True)
        started = time.perf_counter()
        runner()
        print(f"=== {name} took {time.perf_counter() - started:.1f}s ===", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
