"""Row locks of the payouts app."""

from __future__ import annotations

from django.db.models import QuerySet

from gavel.payouts.models import Payout


def payout_lock(*, payout_id: int) -> QuerySet[Payout]:
    return Payout.objects.select_for_update().filter(pk=payout_id)
