"""The demo's Connect chapter runs against PostgreSQL, the sandbox and the real pipeline."""

from __future__ import annotations

from typing import Any

import pytest

from gavel.connect.models import ConnectedAccount
from gavel.demo import chapters_connect
from gavel.demo.narrator import Narrator
from gavel.demo.story import StoryContext, chapter_people


def _story(sandbox: Any) -> StoryContext:
    context = StoryContext(narrator=Narrator(), sandbox=sandbox)
    chapter_people(context)
    return context


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_chapter_with_webhooks_processed_by_a_worker(
    sandbox: Any, celery_worker_thread: Any, capsys: Any
) -> None:
    context = _story(sandbox)

    chapters_connect.chapter_seller_onboarding(context)

    account = ConnectedAccount.objects.get()
    assert account.status == "enabled"
    assert context.cast["ada_stripe_account"] == account.stripe_account_id
    lines = "\n".join(context.narrator.out)
    assert lines.count("Applied from Stripe's webhook (account.updated).") == 3
    assert "listing is refused with “Stripe paused selling until you provide: Give your " in lines


@pytest.mark.django_db
def test_chapter_falls_back_to_the_apps_refresh(
    sandbox: Any, monkeypatch: Any, capsys: Any
) -> None:
    monkeypatch.setattr(chapters_connect, "WAIT_SECONDS", 0.0)
    context = _story(sandbox)
    chapters_connect.chapter_seller_onboarding(context)
    chapters_connect._deliver_to_gavel(context)  # a second chapter run keeps one endpoint

    assert ConnectedAccount.objects.get().status == "enabled"
    lines = "\n".join(context.narrator.out)
    assert lines.count("the app's refresh re-read the account instead") == 3
    assert len(chapters_connect._endpoints(context)) == 1
