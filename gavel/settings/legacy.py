"""The legacy Rails portal migration: where its database is and how the importer batches."""

from __future__ import annotations

from gavel.settings.env import env_bool, env_int, env_str

# The legacy portal's database, read directly: mysql://user:pass@host:3306/db (PyMySQL) or
# postgres://user:pass@host:5432/db (psycopg). Empty: the importer refuses to start.
LEGACY_DATABASE_URL = env_str("LEGACY_DATABASE_URL", "")
# Rows read per keyset page and written per staging/ledger transaction (one checkpoint each).
# Measured on a million payments: pages of 200,000 were 11 % faster than 50,000, and 500,000
# slower again; 100,000 keeps each page's transaction shorter.
LEGACY_IMPORT_BATCH_SIZE = env_int("LEGACY_IMPORT_BATCH_SIZE", default=100_000)
# A payment still waiting for 3-D Secure this long before the import is reported as stuck.
LEGACY_STUCK_REQUIRES_ACTION_HOURS = env_int("LEGACY_STUCK_REQUIRES_ACTION_HOURS", default=0)
# Delta mode re-reads rows updated this many seconds before the previous run's watermark, so a
# row written while that run was reading is not missed (the legacy clock has one-second steps).
LEGACY_DELTA_OVERLAP_SECONDS = env_int("LEGACY_DELTA_OVERLAP_SECONDS", default=300)
# Memory for one import connection's sorts and hashes (a page's steps, lines and joins) and for
# its temporary tables: PostgreSQL's defaults (4MB, 8MB) make every 50k-row page spill to disk.
LEGACY_IMPORT_WORK_MEM = env_str("LEGACY_IMPORT_WORK_MEM", "256MB")
LEGACY_IMPORT_TEMP_BUFFERS = env_str("LEGACY_IMPORT_TEMP_BUFFERS", "512MB")
# A first import drops the secondary indexes of the Gavel tables it fills while they are empty
# and builds them once after loading (ADR 0011); each build gets this much sort memory.
LEGACY_IMPORT_DEFER_INDEXES = env_bool("LEGACY_IMPORT_DEFER_INDEXES", default=True)
LEGACY_IMPORT_MAINTENANCE_WORK_MEM = env_str("LEGACY_IMPORT_MAINTENANCE_WORK_MEM", "512MB")
