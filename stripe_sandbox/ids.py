"""Stripe-style object ids."""

from __future__ import annotations

import random
import string

_ALPHABET = string.ascii_letters + string.digits


class IdFactory:
    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def new(self, prefix: str, length: int = 24) -> str:
        return prefix + "_" + "".join(self._rng.choice(_ALPHABET) for _ in range(length))

    def token(self, length: int = 32) -> str:
        return "".join(self._rng.choice(_ALPHABET) for _ in range(length))
