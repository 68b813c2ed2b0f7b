"""The legacy import's API: a seller's own listings from the legacy portal (read-only)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from gavel.common.api import GavelAPIView, request_user
from gavel.common.pagination import CursorPagination
from gavel.legacy.models import ImportedListing
from gavel.legacy.selectors import imported_listings_for_seller


class ImportedListingOutputSerializer(serializers.ModelSerializer[ImportedListing]):
    times_sold = serializers.IntegerField(read_only=True)

    class Meta:
        model = ImportedListing
        fields = (
            "id",
            "legacy_id",
            "title",
            "description",
            "price_minor",
            "shipping_minor",
            "currency",
            "status",
            "listed_at",
            "times_sold",
        )


class ImportedListingListApi(GavelAPIView):
    """What the signed-in seller listed on the legacy portal: history, never for sale here
    (a listing still open at the cutover is ``open_at_cutover``, to relist as an auction)."""

    @extend_schema(responses={200: ImportedListingOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        paginator = CursorPagination()
        page = paginator.paginate_queryset(
            imported_listings_for_seller(user=request_user(request)), request, view=self
        )
        assert page is not None
        return paginator.get_paginated_response(
            ImportedListingOutputSerializer(page, many=True).data
        )
