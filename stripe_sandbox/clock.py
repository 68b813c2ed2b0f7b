"""Sandbox time. Frozen unless advanced, or optionally following wall-clock time."""

from __future__ import annotations

import time


class Clock:
    """Seconds-resolution clock.

    In frozen mode (default) time moves only through :meth:`Sandbox.advance`. In real-time
    mode it follows the wall clock from ``start`` plus any explicit advances.
    """

    def __init__(self, start: int | None = None, realtime: bool = False) -> None:
        self._base = int(start if start is not None else time.time())
        self.realtime = realtime
        self._mono0 = time.monotonic()
        self._offset = 0

    def now(self) -> int:
        if self.realtime:
            return self._base + self._offset + int(time.monotonic() - self._mono0)
        return self._base + self._offset

    def set(self, ts: int) -> None:
        """Move to ``ts`` (never backwards)."""
        cur = self.now()
        if ts > cur:
            self._offset += ts - cur
