"""Serializer base classes: unknown fields are refused, not silently ignored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """An input serializer that rejects fields it does not declare (400, field named)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field."] for name in unknown}, code="unknown_field"
                )
        return super().to_internal_value(data)


# The largest amount the API accepts (USD 10 billion, JPY 1 trillion): far above any lot, and
# small enough that prices plus increments and amounts times basis points stay in a bigint.
AMOUNT_MINOR_MAX = 10**12


class MinorUnitsField(serializers.IntegerField):
    """An amount in integer minor units, at most ``AMOUNT_MINOR_MAX`` unless the field says
    otherwise; strings, floats and booleans are refused."""

    default_error_messages = {
        "invalid": "An integer number of minor units is required.",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_value", AMOUNT_MINOR_MAX)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        value: int = super().to_internal_value(data)
        return value
