"""Celery tasks of the Connect app; each calls one service."""

from __future__ import annotations

import logging

from celery import shared_task

from gavel.connect.models import ConnectedAccount
from gavel.connect.services import connected_account_refresh as _connected_account_refresh
from gavel.connect.services import connected_accounts_janitor as _connected_accounts_janitor
from gavel.connect.services import connected_accounts_refresh as _connected_accounts_refresh

logger = logging.getLogger(__name__)


@shared_task(name="gavel.connect.tasks.connected_accounts_janitor", acks_late=True)
def connected_accounts_janitor() -> dict[str, int]:
    result = _connected_accounts_janitor()
    return {"settled": result.settled, "resynced": result.resynced, "failed": result.failed}


@shared_task(name="gavel.connect.tasks.connected_account_refresh", acks_late=True)
def connected_account_refresh(connected_account_id: int) -> str:
    """Re-read one account (after an import); a failure is left to the janitor's next run.
    A message whose account row no longer exists (a replayed or stale message) is a no-op."""
    try:
        return str(_connected_account_refresh(account_pk=connected_account_id).status)
    except ConnectedAccount.DoesNotExist:
        logger.warning(
            "refresh of a connected account that no longer exists",
            extra={"account_pk": connected_account_id},
        )
        return "missing"


@shared_task(name="gavel.connect.tasks.connected_accounts_refresh", acks_late=True)
def connected_accounts_refresh(connected_account_ids: list[int]) -> dict[str, int]:
    """Re-read a batch of imported accounts; failures are left to the janitor's next run."""
    result = _connected_accounts_refresh(account_pks=connected_account_ids)
    return {"refreshed": result.refreshed, "failed": result.failed}
