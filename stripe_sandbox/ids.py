"""Stripe-style object ids."""

from __future__ import annotations

import random
import string

_ALPHABET = string.ascii_letters + string.digits


class IdFactory:
    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def getstate(self) -> list[object]:
        version, internal, gauss = self._rng.getstate()
        return [version, list(internal), gauss]

    def setstate(self, state: list[object]) -> None:
        version, internal, gauss = state
        assert isinstance(internal, list)
        self._rng.setstate((version, tuple(internal), gauss))

    def new(self, prefix: str, length: int = 24) -> str:
        return prefix + "_" + "".join(self._rng.choice(_ALPHABET) for _ in range(length))

    def token(self, length: int = 32) -> str:
        return "".join(self._rng.choice(_ALPHABET) for _ in range(length))
