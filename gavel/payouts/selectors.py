"""Reads of the payouts app."""

from __future__ import annotations

from django.db.models import QuerySet

from gavel.payouts.models import Payout


def payouts_for_account(*, account_id: str) -> QuerySet[Payout]:
    return Payout.objects.filter(account_id=account_id)
