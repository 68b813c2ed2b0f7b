"""Form encoding as Stripe takes it: bracket notation for nested dicts and arrays."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, quote

from stripe_sandbox.errors import invalid

_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def _split_key(key: str) -> list[str]:
    m = _KEY_RE.match(key)
    if not m:
        raise invalid(f"Invalid parameter name: {key}", param=key)
    parts = [m.group(1)]
    parts.extend(re.findall(r"\[([^\[\]]*)\]", m.group(2)))
    return parts


def _is_index(part: str) -> bool:
    return part == "" or part.isdigit()


def decode_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn ``[("a[b][0]", "x")]`` into ``{"a": {"b": ["x"]}}``.

    Arrays come from ``a[0]=``/``a[1]=`` (ordered by index) and ``a[]=`` (appended in order).
    """
    root: dict[str, Any] = {}
    seq = 0
    for key, value in pairs:
        parts = _split_key(key)
        node = root
        for i, part in enumerate(parts):
            if part == "":
                seq += 1
                part = f"~{seq:09d}"
            if i == len(parts) - 1:
                node[part] = value
                break
            child = node.get(part)
            if not isinstance(child, dict):
                child = {"__array__": _is_index(parts[i + 1])}
                node[part] = child
            node = child
    return {k: _finalize(v) for k, v in root.items()}


def _sort_key(key: str) -> tuple[int, int, str]:
    return (0, int(key), "") if key.isdigit() else (1, 0, key)


def _finalize(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    is_array = bool(node.pop("__array__", False))
    if is_array and all(k.isdigit() or k.startswith("~") for k in node):
        return [_finalize(node[k]) for k in sorted(node, key=_sort_key)]
    return {k: _finalize(v) for k, v in node.items()}


def decode_form(body: str) -> dict[str, Any]:
    return decode_pairs(parse_qsl(body, keep_blank_values=True))


def encode_form(params: dict[str, Any]) -> str:
    """Encode nested params the way the Stripe SDK does (used by tests and the demo)."""
    out: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}[{k}]" if prefix else str(k), v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        elif isinstance(value, bool):
            out.append(f"{quote(prefix, safe='[]')}={'true' if value else 'false'}")
        elif value is None:
            out.append(f"{quote(prefix, safe='[]')}=")
        else:
            out.append(f"{quote(prefix, safe='[]')}={quote(str(value), safe='')}")

    walk("", params)
    return "&".join(out)
