"""Project rules enforced as tests: who may import stripe, and no enqueue outside the outbox."""

from __future__ import annotations

import ast
from pathlib import Path

GAVEL = Path(__file__).resolve().parents[2]


def _python_files() -> list[Path]:
    return [
        path
        for path in GAVEL.rglob("*.py")
        if "migrations" not in path.parts and "tests" not in path.parts
    ]


def test_only_the_gateway_imports_stripe() -> None:
    offenders = []
    for path in _python_files():
        if path.is_relative_to(GAVEL / "gateway"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            if any(name == "stripe" or name.startswith("stripe.") for name in names):
                offenders.append(f"{path.relative_to(GAVEL)}:{node.lineno}")
    assert offenders == []


def test_tasks_are_enqueued_only_through_the_outbox() -> None:
    """``.delay()`` / ``.apply_async()`` / ``send_task`` run outside a transaction's commit; the
    outbox (gavel/common/outbox.py) is the one place that publishes."""
    allowed = {GAVEL / "common" / "outbox.py"}
    offenders = []
    for path in _python_files():
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Attribute) and node.attr in {
                "delay",
                "apply_async",
                "send_task",
            }:
                offenders.append(f"{path.relative_to(GAVEL)}:{node.lineno} .{node.attr}")
    assert offenders == []
