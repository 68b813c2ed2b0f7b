"""Strict parameter validation driven by the official SDK's typed parameter definitions.

``stripe.params.*Params`` TypedDicts say which parameters each endpoint accepts. They are
introspected recursively: unknown keys (top-level or nested) are rejected the way Stripe
rejects them ("Received unknown parameter: transfer_data[foo]"), required keys must be
present, and form-encoded strings are coerced to ints/bools/floats where the type says so.
"""

from __future__ import annotations

import importlib
import re
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, Literal, Union

from stripe_sandbox.errors import StripeError, invalid

_REQUEST_OPTION_KEYS = frozenset(
    {
        "api_key",
        "stripe_version",
        "stripe_account",
        "stripe_context",
        "max_network_retries",
        "idempotency_key",
        "content_type",
        "headers",
    }
)


def _module_name(cls_name: str) -> str:
    """``CustomerCreateParams`` -> ``stripe.params._customer_create_params``;
    ``v2.core.EventListParams`` -> ``stripe.params.v2.core._event_list_params``."""
    namespace, _, name = cls_name.rpartition(".")
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    return "stripe.params." + (namespace + "." if namespace else "") + "_" + snake


@cache
def params_class(cls_name: str) -> Any:
    module = importlib.import_module(_module_name(cls_name))
    return getattr(module, cls_name.rpartition(".")[2])


@cache
def _hints(td: Any) -> dict[str, Any]:
    return typing.get_type_hints(
        td, localns={"StripeContext": Any, "Mapping": Mapping}, include_extras=True
    )


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "__required_keys__")


def _strip_notrequired(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.NotRequired or origin is typing.Required:
        return typing.get_args(tp)[0]
    name = getattr(origin, "_name", None) or getattr(origin, "__name__", "")
    if name in ("NotRequired", "Required"):
        return typing.get_args(tp)[0]
    return tp


def _name(path: list[str]) -> str:
    return path[0] + "".join(f"[{p}]" for p in path[1:])


class _Mismatch(Exception):
    pass


def _literal_values(tp: Any) -> list[Any]:
    return list(typing.get_args(tp))


def _coerce(value: Any, tp: Any, path: list[str]) -> Any:
    tp = _strip_notrequired(tp)
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = typing.get_args(tp)
        literal_arms = [a for a in args if typing.get_origin(a) is Literal]
        enum_values = [v for a in literal_arms for v in typing.get_args(a) if v != ""]
        if enum_values and all(a is str or a in literal_arms for a in args):
            # The SDK widens enums with ``str`` for forward compatibility; Stripe does not.
            allowed = [v for a in literal_arms for v in typing.get_args(a)]
            if value in allowed:
                return value
            raise _Mismatch(
                invalid(
                    f"Invalid {_name(path)}: must be one of " + ", ".join(map(str, allowed)),
                    param=_name(path),
                )
            )
        # Prefer exact literal / str matches for strings, then the rest.
        errors: list[Exception] = []
        for arg in args:
            try:
                return _coerce(value, arg, path)
            except (_Mismatch, StripeError) as exc:  # remember and try the next arm
                errors.append(exc)
        for err in errors:
            if not isinstance(err, _Mismatch):
                raise err
        raise errors[0] if errors else _Mismatch()
    if origin is Literal:
        allowed = _literal_values(tp)
        if value in allowed:
            return value
        raise _Mismatch(
            invalid(
                f"Invalid {_name(path)}: must be one of " + ", ".join(str(a) for a in allowed),
                param=_name(path),
            )
        )
    if tp is bool:
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise _Mismatch(invalid(f"Invalid boolean: {value}", param=_name(path)))
    if tp is int:
        if isinstance(value, bool):
            raise _Mismatch(invalid(f"Invalid integer: {value}", param=_name(path)))
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            return int(value)
        raise _Mismatch(invalid(f"Invalid integer: {value}", param=_name(path)))
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return float(str(value))
        except ValueError:
            raise _Mismatch(invalid(f"Invalid decimal: {value}", param=_name(path))) from None
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _Mismatch(invalid(f"Invalid string: {value!r}", param=_name(path)))
    if origin in (list, typing.List):  # noqa: UP006
        (item_tp,) = typing.get_args(tp) or (Any,)
        if isinstance(value, dict) and not value:
            return []
        if value == "":
            return []
        if not isinstance(value, list):
            raise _Mismatch(invalid("Invalid array", param=_name(path)))
        return [_coerce(v, item_tp, [*path, str(i)]) for i, v in enumerate(value)]
    if origin in (dict, typing.Dict) or getattr(tp, "__name__", "") == "UntypedStripeObject":  # noqa: UP006
        if not isinstance(value, dict):
            raise _Mismatch(invalid("Invalid object", param=_name(path)))
        return dict(value)
    if typing.get_origin(tp) is not None and getattr(typing.get_origin(tp), "__name__", "") == (
        "UntypedStripeObject"
    ):
        if not isinstance(value, dict):
            raise _Mismatch(invalid("Invalid object", param=_name(path)))
        return dict(value)
    if _is_typeddict(tp):
        if not isinstance(value, dict):
            raise _Mismatch(invalid("Invalid object", param=_name(path)))
        return _validate_td(value, tp, path)
    return value


def _validate_td(params: dict[str, Any], td: Any, path: list[str]) -> dict[str, Any]:
    hints = _hints(td)
    required = set(getattr(td, "__required_keys__", set()))
    out: dict[str, Any] = {}
    for key in params:
        if key not in hints or key in _REQUEST_OPTION_KEYS:
            raise invalid(
                f"Received unknown parameter: {_name([*path, key])}", param=_name([*path, key])
            )
    for key in sorted(required):
        if key in _REQUEST_OPTION_KEYS:
            continue
        if key not in params:
            raise invalid(
                f"Missing required param: {_name([*path, key])}.", param=_name([*path, key])
            )
    for key, value in params.items():
        try:
            out[key] = _coerce(value, hints[key], [*path, key])
        except _Mismatch as e:
            inner = e.args[0] if e.args else None
            if inner is not None:
                raise inner from None
            raise invalid(
                f"Invalid value for {_name([*path, key])}", param=_name([*path, key])
            ) from None
    return out


def validate(params: dict[str, Any], cls_name: str | None) -> dict[str, Any]:
    """Validate and coerce ``params`` against ``stripe.params.<cls_name>``.

    ``None`` means the endpoint takes no parameters except ``expand``.
    """
    if cls_name is None:
        allowed = {"expand"}
        for key in params:
            if key not in allowed:
                raise invalid(f"Received unknown parameter: {key}", param=key)
        return dict(params)
    return _validate_td(params, params_class(cls_name), [])
