"""Cursor pagination: stable under inserts, which offset pagination is not."""

from __future__ import annotations

from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    ordering = "-id"
    page_size_query_param = "limit"
    max_page_size = 100
