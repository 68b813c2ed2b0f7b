"""OpenAPI schema generation: unique component names for the nested serializers views declare.

Views keep the styleguide's nested ``InputSerializer`` / ``OutputSerializer``; drf-spectacular
names components after the class name alone, so every view's ``InputSerializer`` would collide.
A nested serializer is named after its qualified name instead (``BidPlaceApiInputSerializer``
becomes the component ``BidPlaceApiInput``).
"""

from __future__ import annotations

from typing import Any, Literal

from drf_spectacular.openapi import AutoSchema


class GavelAutoSchema(AutoSchema):
    def get_serializer_name(
        self, serializer: Any, direction: Literal["request", "response"]
    ) -> str:
        serializer_class = serializer if isinstance(serializer, type) else type(serializer)
        qualified: str = serializer_class.__qualname__
        if "." in qualified and "<locals>" not in qualified:
            return qualified.replace(".", "")
        name: str = super().get_serializer_name(serializer, direction)
        return name
