"""The whole demo story on PostgreSQL, the sandbox, the real webhook pipeline and a worker."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gavel.auctions.models import BuyerCustomer
from gavel.demo.narrator import Narrator
from gavel.demo.story import CHAPTERS, StoryContext, books_summary
from gavel.ledger.models import JournalEntry
from gavel.ledger.services import credit, debit, entry_post
from gavel.legacy.models import ImportedListingOrderLine
from gavel.payments.models import Order


def _webhooks_settled(timeout_seconds: float = 30) -> dict[str, int]:
    from gavel.webhooks.models import WebhookEvent

    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if not WebhookEvent.objects.filter(status__in=WebhookEvent.UNFINISHED).exists():
            break
        time.sleep(0.2)
    counts: dict[str, int] = {}
    for status in WebhookEvent.objects.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_story_ends_balanced_and_reconciled_with_every_webhook_processed(
    sandbox: Any, celery_worker_thread: Any, capsys: Any
) -> None:
    context = StoryContext(narrator=Narrator(), sandbox=sandbox)
    for chapter in CHAPTERS:
        chapter(context)

    line, clean = books_summary()
    assert clean, line
    assert line.startswith("ledger balanced, reconciled with Stripe (")
    assert JournalEntry.objects.exists()

    # The legacy portal was imported and verified before the auctions, by the real importer.
    out = context.narrator.out
    verified = [text for text in out if "Verified against the portal" in text]
    assert len(verified) == 1
    assert verified[0].endswith(": 0 differences.")
    assert out.index("\n== The legacy portal moves in ==") < out.index(
        "\n== Two auctions: a proxy-bidding war, a soft close, the hammer falls =="
    )
    assert ImportedListingOrderLine.objects.exists()
    assert Order.objects.filter(kind=Order.Kind.LEGACY).count() > 10
    # Its transactions moved no money on Stripe, so it posts nothing the sandbox lacks.
    assert not JournalEntry.objects.filter(reference__startswith="legacy:").exists()
    # The one authorization in flight was handed to Gavel, captured and confirmed.
    in_flight = Order.objects.get(legacy_reference="legacy:transactions:900001")
    assert (in_flight.status, in_flight.captured_minor) == ("captured", 12_600)
    assert in_flight.receipt_confirmed_at is not None
    # The buyers' imported Stripe customers were read back: the in-flight buyer's is in Stripe,
    # the generated ones are not and were forgotten; none is left unsynced.
    imported = BuyerCustomer.objects.filter(user__legacy_person_id__isnull=False)
    assert not imported.filter(status="unsynced").exists()
    assert imported.get(user__legacy_person_id="LegacyBuyerDemo000001").status == "active"
    (read_back,) = [text for text in out if "Stripe customers back from Stripe" in text]
    assert (
        " 1 found, with 2 cards saved for off-session use adopted (1 verified by a SetupIntent,"
        " 1 saved by the portal's payment; " in read_back
    ), read_back

    statuses = _webhooks_settled()
    assert statuses.get("processed", 0) > 10
    assert set(statuses) <= {"processed", "superseded", "ignored"}, statuses
    from gavel.webhooks.models import WebhookEvent

    delivered = {delivery["event_id"] for delivery in sandbox.deliveries() if delivery["succeeded"]}
    stored = set(WebhookEvent.objects.values_list("stripe_event_id", flat=True))
    assert len(delivered) > 10
    assert delivered == stored


@pytest.mark.django_db
def test_the_summary_says_ledger_balanced_only_when_it_is(sandbox: Any) -> None:
    from gavel.ledger.models import LedgerAccount

    assert books_summary() == (
        "ledger balanced, reconciled with Stripe (0 balance transactions, 0 differences)",
        True,
    )
    entry_post(
        reference="demo-test-1",
        kind="test",
        lines=[
            debit("platform:stripe_balance", LedgerAccount.Kind.ASSET, 500, "USD"),
            credit("revenue:commission", LedgerAccount.Kind.REVENUE, 500, "USD"),
        ],
    )
    line, clean = books_summary()
    assert clean is False
    assert "ledger balanced" not in line
    assert "differences with Stripe" in line
