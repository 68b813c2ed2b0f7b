"""Prints the story in words a product person understands."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field


@dataclass
class Narrator:
    steps: int = 0
    out: list[str] = field(default_factory=list)

    def chapter(self, title: str) -> None:
        self._print(f"\n== {title} ==")

    def step(self, text: str) -> None:
        self.steps += 1
        self._print(f"  {self.steps:>2}. {text}")

    def detail(self, text: str) -> None:
        self._print(f"      {text}")

    def _print(self, line: str) -> None:
        self.out.append(line)
        print(line, file=sys.stdout, flush=True)
