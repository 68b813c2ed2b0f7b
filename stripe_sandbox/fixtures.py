"""Where Stripe's example objects (``fixtures3.json``) live, for the shape test only.

The sandbox itself never reads the file: the keys it needs are copied into
``stripe_sandbox/_shape_keys.py``. Set ``STRIPE_SANDBOX_FIXTURES`` to point elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "STRIPE_SANDBOX_FIXTURES"


def fixtures_path() -> Path:
    """``$STRIPE_SANDBOX_FIXTURES`` or ``<repo>/../shared/stripe/fixtures3.json``."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured)
    repo = Path(__file__).resolve().parents[1]
    return repo.parent / "shared" / "stripe" / "fixtures3.json"
