"""Services and handlers: lost answers, refusals, events about other objects, history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from gavel.common.models import OutboxMessage
from gavel.connect.models import ConnectedAccount, ConnectedAccountChange, StripeLinkRequest
from gavel.connect.selectors import seller_selling_status
from gavel.connect.services import (
    IllegalStatusMove,
    _status_move,
    connected_account_deauthorize,
    connected_account_event_apply,
)
from gavel.connect.states import AccountStatus
from gavel.connect.tests.conftest import ONBOARDING_URL
from gavel.connect.webhook_handlers import account_deauthorized, account_state_changed
from gavel.gateway.errors import GatewayFinalError, GatewayRetryableError
from gavel.users.models import User
from gavel.webhooks.registry import IncomingEvent, handler_for, ordering_for

pytestmark = pytest.mark.django_db


def _onboard(seller_client: Any) -> ConnectedAccount:
    seller_client.post(ONBOARDING_URL, {}, format="json")
    return ConnectedAccount.objects.get()


def _event(event_type: str, *, account: str | None, created: int, obj: dict[str, Any]) -> Any:
    return IncomingEvent(
        id=f"evt_{event_type}_{created}",
        type=event_type,
        created=created,
        livemode=False,
        data_object=obj,
        account=account,
    )


def test_lost_create_answer_then_retry_finds_the_same_stripe_account(
    seller: User, seller_client: Any, sandbox: Any
) -> None:
    sandbox.timeout_after_apply(method="POST", path="/v1/accounts")

    lost = seller_client.post(ONBOARDING_URL, {}, format="json")

    assert lost.status_code == 503
    assert lost.json()["error"]["code"] == "stripe_unavailable"
    account = ConnectedAccount.objects.get()
    assert (account.status, account.stripe_account_id) == ("creating", None)
    assert seller_selling_status(user=seller).code == "account_pending"
    assert len(sandbox.client().v1.accounts.list().data) == 1  # Stripe did create it

    retried = seller_client.post(ONBOARDING_URL, {}, format="json")

    assert retried.status_code == 200
    stripe_accounts = sandbox.client().v1.accounts.list().data
    assert [a.id for a in stripe_accounts] == [retried.json()["account"]["stripe_account_id"]]


def test_stripe_refusing_the_create_is_502_and_the_row_waits(
    seller_client: Any, sandbox: Any
) -> None:
    sandbox.fail_requests(400, method="POST", path="/v1/accounts")

    response = seller_client.post(ONBOARDING_URL, {}, format="json")

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "stripe_refused"
    assert ConnectedAccount.objects.get().stripe_account_id is None
    link = seller_client.post("/api/v1/connect/account/onboarding-links/", {}, format="json")
    assert (link.status_code, link.json()["error"]["code"]) == (409, "account_pending")


def test_failed_link_is_recorded_as_failed(seller_client: Any, sandbox: Any) -> None:
    _onboard(seller_client)
    sandbox.fail_requests(500, method="POST", path="/v1/account_sessions")

    response = seller_client.post("/api/v1/connect/account/sessions/", {}, format="json")

    assert response.status_code == 503
    assert StripeLinkRequest.objects.get(kind="account_session").succeeded is False


def test_refresh_when_stripe_is_down_is_503_and_changes_nothing(
    seller_client: Any, sandbox: Any
) -> None:
    account = _onboard(seller_client)
    sandbox.complete_onboarding(account.stripe_account_id)
    sandbox.fail_requests(500, method="GET", path="/v1/accounts")

    response = seller_client.post("/api/v1/connect/account/refresh/", {}, format="json")

    assert response.status_code == 503
    account.refresh_from_db()
    assert account.status == "onboarding"
    assert account.changes.count() == 1


def test_handler_lets_gateway_errors_reach_the_pipeline_for_a_retry(
    seller_client: Any, sandbox: Any
) -> None:
    account = _onboard(seller_client)
    sandbox.fail_requests(500, method="GET", path="/v1/accounts")
    event = _event(
        "account.updated",
        account=account.stripe_account_id,
        created=sandbox.now(),
        obj={"id": account.stripe_account_id, "object": "account"},
    )

    with pytest.raises(GatewayRetryableError):
        account_state_changed(event)

    account.refresh_from_db()
    assert account.stripe_event_created_at is None


def test_events_about_accounts_that_are_not_gavels_are_ignored(sandbox: Any) -> None:
    other = sandbox.client().v1.accounts.create(params={"type": "express"})
    event = _event(
        "account.updated",
        account=None,
        created=sandbox.now(),
        obj={"id": other.id, "object": "account"},
    )

    assert connected_account_event_apply(event=event) is False
    assert connected_account_deauthorize(event=event) is False
    empty = _event("person.updated", account=None, created=sandbox.now(), obj={"id": "person_1"})
    assert connected_account_event_apply(event=empty) is False
    assert ConnectedAccountChange.objects.count() == 0


@pytest.mark.parametrize(
    ("event_type", "obj"),
    [
        ("capability.updated", {"id": "transfers", "object": "capability"}),
        ("person.updated", {"id": "person_123", "object": "person"}),
        ("account.external_account.updated", {"id": "ba_123", "object": "bank_account"}),
        ("account.updated", None),
    ],
)
def test_every_account_family_event_re_reads_the_account(
    seller_client: Any, sandbox: Any, event_type: str, obj: dict[str, Any] | None
) -> None:
    account = _onboard(seller_client)
    sandbox.complete_onboarding(account.stripe_account_id)
    # A platform endpoint's account.updated carries no "account"; its object is the account.
    event = _event(
        event_type,
        account=None if obj is None else account.stripe_account_id,
        created=sandbox.now(),
        obj=obj or {"id": account.stripe_account_id, "object": "account"},
    )

    handler_for(event_type)(event)  # type: ignore[misc]

    account.refresh_from_db()
    assert account.status == "enabled"
    assert account.changes.last().stripe_event_type == event_type  # type: ignore[union-attr]
    assert ordering_for(event_type) == "refetch"


def test_repeated_event_is_harmless(seller_client: Any, sandbox: Any) -> None:
    account = _onboard(seller_client)
    sandbox.complete_onboarding(account.stripe_account_id)
    event = _event(
        "account.updated",
        account=account.stripe_account_id,
        created=sandbox.now(),
        obj={"id": account.stripe_account_id, "object": "account"},
    )

    assert connected_account_event_apply(event=event) is True
    assert connected_account_event_apply(event=event) is False
    account_deauthorized(event)
    account_deauthorized(event)

    assert account.changes.count() == 3  # create, the event, the deauthorization


def test_payouts_resumed_task_is_enqueued_through_the_outbox(
    settings: Any, seller_client: Any, sandbox: Any
) -> None:
    settings.CONNECT_PAYOUTS_RESUMED_TASK = "gavel.payments.tasks.seller_payouts_release"
    account = _onboard(seller_client)
    sandbox.complete_onboarding(account.stripe_account_id)

    seller_client.post("/api/v1/connect/account/refresh/", {}, format="json")
    seller_client.post("/api/v1/connect/account/refresh/", {}, format="json")

    message = OutboxMessage.objects.get()
    assert (message.task_name, message.queue) == (
        "gavel.payments.tasks.seller_payouts_release",
        "payments",
    )
    assert message.kwargs == {"connected_account_id": account.pk, "user_id": account.user_id}


def test_a_deauthorized_account_never_moves_again(seller_client: Any, sandbox: Any) -> None:
    account = _onboard(seller_client)
    ConnectedAccount.objects.filter(pk=account.pk).update(status=AccountStatus.DEAUTHORIZED)
    account.refresh_from_db()

    with pytest.raises(IllegalStatusMove):
        _status_move(
            account,
            target=AccountStatus.ENABLED,
            values={},
            source=ConnectedAccountChange.Source.REFRESH,
        )


def test_history_is_append_only(seller_client: Any, sandbox: Any) -> None:
    _onboard(seller_client)
    change = ConnectedAccountChange.objects.get()

    with pytest.raises(IntegrityError), transaction.atomic():
        ConnectedAccountChange.objects.filter(pk=change.pk).update(status_after="enabled")
    with pytest.raises(IntegrityError), transaction.atomic():
        ConnectedAccountChange.objects.filter(pk=change.pk).delete()

    assert ConnectedAccountChange.objects.get().status_after == "onboarding"
    assert connection.vendor == "postgresql"


def test_one_account_per_user_is_a_database_rule(seller: User, sandbox: Any) -> None:
    ConnectedAccount.objects.create(user=seller, preset="express")

    with pytest.raises(IntegrityError), transaction.atomic():
        ConnectedAccount.objects.create(user=seller, preset="express")


def test_gateway_refuses_a_non_account_payload() -> None:
    from gavel.gateway.accounts import account_from_payload

    with pytest.raises(GatewayFinalError):
        account_from_payload({"object": "customer", "id": "cus_1"})


def test_become_a_seller_past_the_idempotency_window_is_left_to_support(
    seller: User, seller_client: Any, sandbox: Any
) -> None:
    sandbox.timeout_after_apply(method="POST", path="/v1/accounts")
    assert seller_client.post(ONBOARDING_URL, {}, format="json").status_code == 503
    ConnectedAccount.objects.update(created_at=timezone.now() - timedelta(hours=30))
    before = list(ConnectedAccount.objects.values())
    changes_before = ConnectedAccountChange.objects.count()

    response = seller_client.post(ONBOARDING_URL, {}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (
        409,
        "account_create_unsettled",
    )
    assert list(ConnectedAccount.objects.values()) == before
    assert ConnectedAccountChange.objects.count() == changes_before
    assert len(sandbox.client().v1.accounts.list().data) == 1  # only the lost create's
