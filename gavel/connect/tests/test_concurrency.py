"""A double-tapped "become a seller": real concurrent requests against a live server."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from conftest import bearer
from gavel.connect.models import ConnectedAccount
from gavel.connect.tests.conftest import ONBOARDING_URL
from gavel.users.models import User

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def post_concurrently(url: str, headers: list[dict[str, str]]) -> list[requests.Response]:
    barrier = threading.Barrier(len(headers))
    answers: list[Any] = [None] * len(headers)

    def send(index: int) -> None:
        barrier.wait()
        answers[index] = requests.post(url, json={}, headers=headers[index], timeout=30)

    threads = [threading.Thread(target=send, args=(index,)) for index in range(len(headers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _authorization(user: User) -> dict[str, str]:
    return {"Authorization": bearer(user)["HTTP_AUTHORIZATION"]}


def test_double_tap_creates_one_stripe_account(
    live_server: Any, sandbox: Any, make_user: Any
) -> None:
    seller = make_user("tapper@example.com")

    answers = post_concurrently(f"{live_server.url}{ONBOARDING_URL}", [_authorization(seller)] * 6)

    assert sorted(answer.status_code for answer in answers) == [200] * 5 + [201]
    account_ids = {answer.json()["account"]["stripe_account_id"] for answer in answers}
    assert len(account_ids) == 1
    assert ConnectedAccount.objects.count() == 1
    stripe_accounts = sandbox.client().v1.accounts.list().data
    assert [account.id for account in stripe_accounts] == list(account_ids)


def test_concurrent_sellers_each_get_their_own_account(
    live_server: Any, sandbox: Any, make_user: Any
) -> None:
    sellers = [make_user(f"seller{index}@example.com") for index in range(4)]

    answers = post_concurrently(
        f"{live_server.url}{ONBOARDING_URL}", [_authorization(user) for user in sellers] * 2
    )

    assert sorted(answer.status_code for answer in answers) == [200] * 4 + [201] * 4
    assert ConnectedAccount.objects.count() == 4
    assert len(sandbox.client().v1.accounts.list().data) == 4
    by_user = dict(ConnectedAccount.objects.values_list("user__email", "stripe_account_id"))
    assert len(set(by_user.values())) == 4
