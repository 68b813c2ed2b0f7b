"""MinorUnitsField: integer minor units, capped by default."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from gavel.common.serializers import AMOUNT_MINOR_MAX, MinorUnitsField


def test_amounts_are_capped_unless_the_field_sets_its_own_limit() -> None:
    field = MinorUnitsField(min_value=1)
    assert field.to_internal_value(AMOUNT_MINOR_MAX) == 10**12
    for amount in (AMOUNT_MINOR_MAX + 1, 10**19):
        with pytest.raises(serializers.ValidationError) as raised:
            field.run_validation(amount)
        assert raised.value.detail == ["Ensure this value is less than or equal to 1000000000000."]
    assert MinorUnitsField(max_value=500).run_validation(500) == 500
    with pytest.raises(serializers.ValidationError):
        MinorUnitsField(max_value=500).run_validation(501)
