"""Row locks of the payouts app."""

from __future__ import annotations

from django.db.models import QuerySet

from gavel.payouts.models import Payout, PayoutAccount


def payout_lock(*, payout_id: int) -> QuerySet[Payout]:
    return Payout.objects.select_for_update().filter(pk=payout_id)


def payout_account_lock(*, account_id: str) -> QuerySet[PayoutAccount]:
    return PayoutAccount.objects.select_for_update().filter(account_id=account_id)
