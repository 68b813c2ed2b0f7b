"""Row locks of the Connect app, one home. One connected account at a time."""

from __future__ import annotations

from gavel.connect.models import ConnectedAccount


def connected_account_lock(*, account_pk: int) -> ConnectedAccount:
    """The account row, locked until the end of the transaction. Every write to the mirror,
    and the Stripe call that creates the account, happen under this lock."""
    return ConnectedAccount.objects.select_for_update().get(pk=account_pk)
