"""Importing buyers' existing Stripe customers (idempotent, conflicts returned, not loaded),
and reading them back from Stripe: found, or forgotten and made again when needed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from django.db import connection

from conftest import client_for
from gavel.auctions.models import (
    BuyerCustomer,
    BuyerCustomerTransition,
    PaymentMethodSetup,
    VerifiedPaymentMethod,
)
from gavel.auctions.selectors import bidder_has_verified_payment_method
from gavel.auctions.services.customers import (
    REFRESH_BATCH_TASK,
    CustomerImport,
    buyer_customer_card_attached_apply,
    buyer_customer_deleted_apply,
    buyer_customer_refresh,
    buyer_customers_import,
)
from gavel.auctions.services.eligibility import (
    buyer_customer_ensure,
    payment_method_setup_refresh,
)
from gavel.auctions.tasks import buyer_customers_janitor, buyer_customers_refresh
from gavel.common.errors import ServiceError
from gavel.common.models import OutboxMessage
from gavel.payments.tests.factories import incoming
from gavel.users.models import User
from gavel.webhooks.registry import handler_for

pytestmark = pytest.mark.django_db

T = TypeVar("T")


def test_customers_import_once_and_conflicts_are_returned(make_user: Any) -> None:
    ann, bob, cat, dan = (make_user(f"{name}@example.com") for name in ("ann", "bob", "cat", "dan"))
    BuyerCustomer.objects.create(user=dan, stripe_customer_id="cus_DanAlready01")
    batch = [
        CustomerImport(ann.pk, "cus_AnnLegacy0001"),
        CustomerImport(bob.pk, "cus_DanAlready01"),  # another user's customer
        CustomerImport(dan.pk, "cus_DanSecond001"),  # the user has another customer
        CustomerImport(cat.pk, "cus_AnnLegacy0001"),  # twice in the batch
    ]
    first = buyer_customers_import(customers=batch)
    assert (first.created, first.already_imported) == (1, 0)
    assert first.conflicts == batch[1:]
    second = buyer_customers_import(customers=batch[:1])
    assert (second.created, second.already_imported, second.conflicts) == (0, 1, [])
    assert sorted(BuyerCustomer.objects.values_list("user__email", "stripe_customer_id")) == [
        ("ann@example.com", "cus_AnnLegacy0001"),
        ("dan@example.com", "cus_DanAlready01"),
    ]


def test_customers_import_refuses_what_is_not_a_customer_and_writes_nothing(
    make_user: Any,
) -> None:
    user = make_user("eve@example.com")
    with pytest.raises(ServiceError) as refused:
        buyer_customers_import(
            customers=[
                CustomerImport(user.pk, "cus_Fine00000001"),
                CustomerImport(user.pk, "acct_1"),
            ]
        )
    assert refused.value.code == "invalid_import"
    assert BuyerCustomer.objects.count() == 0


def _import(*pairs: tuple[Any, str]) -> list[BuyerCustomer]:
    result = buyer_customers_import(
        customers=[CustomerImport(user.pk, customer_id) for user, customer_id in pairs]
    )
    assert result.created == len(pairs)
    return list(BuyerCustomer.objects.order_by("id"))


def _history(customer: BuyerCustomer) -> list[tuple[str, str, str]]:
    return list(
        customer.transitions.order_by("id").values_list("from_status", "to_status", "reason")
    )


def test_imported_customers_are_read_from_stripe_and_those_it_no_longer_has_forgotten(
    sandbox: Any, make_user: Any
) -> None:
    client = sandbox.client()
    kept = client.v1.customers.create(params={"email": "kim@example.com"})
    deleted = client.v1.customers.create(params={"email": "lee@example.com"})
    client.v1.customers.delete(deleted.id)
    kim, lee, max_ = (make_user(f"{n}@example.com") for n in ("kim", "lee", "max"))
    rows = _import((kim, kept.id), (lee, deleted.id), (max_, "cus_NeverInStripe01"))
    assert {row.status for row in rows} == {"unsynced"}
    # One refresh task for the batch, through the outbox (published once the batch commits).
    message = OutboxMessage.objects.get(task_name=REFRESH_BATCH_TASK)
    assert message.kwargs == {"customer_ids": [row.pk for row in rows]}

    assert buyer_customers_refresh(**message.kwargs) == {"refreshed": 3, "failed": 0}
    found, gone, never = (BuyerCustomer.objects.get(pk=row.pk) for row in rows)
    assert (found.status, found.stripe_customer_id, found.generation) == ("active", kept.id, 1)
    assert found.synced_at is not None
    assert _history(found) == [
        ("", "unsynced", "imported"),
        ("unsynced", "active", "found in Stripe"),
    ]
    for row, old_id, why in (
        (gone, deleted.id, "deleted"),
        (never, "cus_NeverInStripe01", "not found"),
    ):
        assert (row.status, row.stripe_customer_id, row.generation) == ("creating", None, 2)
        assert _history(row) == [
            ("", "unsynced", "imported"),
            ("unsynced", "creating", f"{old_id} {why} in Stripe"),
        ]

    # Run again (a redelivered task): nothing changes.
    assert buyer_customers_refresh(**message.kwargs) == {"refreshed": 3, "failed": 0}
    assert BuyerCustomerTransition.objects.count() == 6
    assert list(
        BuyerCustomer.objects.order_by("id").values_list("stripe_customer_id", flat=True)
    ) == [
        kept.id,
        None,
        None,
    ]

    # An import naming a forgotten customer again (a delta after the cutover rehearsal) is
    # counted as already done: neither recorded again nor reported as a conflict.
    assert gone.forgotten_stripe_customer_ids == [deleted.id]
    again = buyer_customers_import(customers=[CustomerImport(lee.pk, deleted.id)])
    assert (again.created, again.already_imported, again.conflicts) == (0, 1, [])
    assert BuyerCustomer.objects.get(pk=gone.pk).stripe_customer_id is None

    # The buyer whose customer is gone gets a new one when they next need it, under a new
    # idempotency key (the row's first key may have made the customer now deleted).
    renewed = buyer_customer_ensure(user=lee)
    assert renewed.stripe_customer_id not in (None, deleted.id)
    assert (renewed.status, renewed.generation) == ("active", 2)
    remote = client.v1.customers.retrieve(renewed.stripe_customer_id)
    assert (remote.email, remote.metadata["gavel_user_id"]) == ("lee@example.com", str(lee.pk))
    assert buyer_customer_ensure(user=lee).stripe_customer_id == renewed.stripe_customer_id
    assert _history(renewed)[-1] == (
        "creating",
        "active",
        f"{renewed.stripe_customer_id} created in Stripe",
    )
    # A buyer who already had an active customer keeps it; no Stripe call.
    assert buyer_customer_ensure(user=kim).stripe_customer_id == kept.id


def test_a_refresh_stripe_does_not_answer_changes_nothing_and_the_janitor_comes_back(
    sandbox: Any, make_user: Any, settings: Any
) -> None:
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    settings.AUCTIONS_CUSTOMERS_JANITOR_BATCH = 1
    client = sandbox.client()
    first, second = (
        client.v1.customers.create(params={"email": f"{n}@example.com"}) for n in ("ora", "pat")
    )
    rows = _import(
        (make_user("ora@example.com"), first.id), (make_user("pat@example.com"), second.id)
    )
    sandbox.fail_requests(500, method="GET", path="/v1/customers/")
    with pytest.raises(ServiceError) as failed:
        buyer_customer_refresh(customer_pk=rows[0].pk)
    assert failed.value.code == "stripe_unavailable"
    sandbox.fail_requests(429, method="GET", path="/v1/customers/")
    assert buyer_customers_refresh(customer_ids=[row.pk for row in rows]) == {
        "refreshed": 1,
        "failed": 1,
    }
    assert list(BuyerCustomer.objects.order_by("id").values_list("status", flat=True)) == [
        "unsynced",
        "active",
    ]
    # The janitor takes the unsynced ones, a batch at a time, until none is left.
    assert buyer_customers_janitor() == {"refreshed": 1, "failed": 0}
    assert buyer_customers_janitor() == {"refreshed": 0, "failed": 0}
    assert set(BuyerCustomer.objects.values_list("status", flat=True)) == {"active"}
    # A refusal other than a missing customer is not taken for one.
    sandbox.fail_requests(401, method="GET", path="/v1/customers/")
    with pytest.raises(ServiceError):
        buyer_customer_refresh(customer_pk=rows[0].pk)
    assert BuyerCustomer.objects.get(pk=rows[0].pk).stripe_customer_id == first.id


def test_customer_deleted_in_stripe_is_forgotten_with_the_cards_verified_on_it(
    sandbox: Any, make_user: Any
) -> None:
    client = sandbox.client()
    buyer = make_user("quinn@example.com")
    customer = buyer_customer_ensure(user=buyer)
    assert _history(customer) == [
        ("", "creating", "created"),
        ("creating", "active", f"{customer.stripe_customer_id} created in Stripe"),
    ]
    setup = PaymentMethodSetup.objects.create(
        user=buyer, customer=customer, status=PaymentMethodSetup.Status.SUCCEEDED
    )
    card = VerifiedPaymentMethod.objects.create(
        user=buyer,
        setup=setup,
        stripe_payment_method_id="pm_OnTheOldCustomer",
        last4="4242",
        exp_month=12,
        exp_year=2099,
    )
    assert bidder_has_verified_payment_method(user=buyer)
    other = client.v1.customers.create(params={"email": "not-a-buyer@example.com"})
    client.v1.customers.delete(other.id)
    client.v1.customers.delete(customer.stripe_customer_id)
    handler = handler_for("customer.deleted")
    assert handler is not None
    events = sandbox.list_events(type="customer.deleted")
    assert len(events) == 2
    for raw in [*events, *events]:  # each delivered twice
        handler(incoming(raw))
    customer.refresh_from_db()
    assert (customer.status, customer.stripe_customer_id, customer.generation) == (
        "creating",
        None,
        2,
    )
    assert [to for _, to, _ in _history(customer)] == ["creating", "active", "creating"]
    card.refresh_from_db()
    assert card.detached_at is not None
    assert not bidder_has_verified_payment_method(user=buyer)  # sets up a card again
    assert buyer_customer_deleted_apply(stripe_customer_id=other.id) is False


def _at_once(callers: int, work: Callable[[], T]) -> tuple[list[T], list[BaseException]]:
    """``work`` on ``callers`` threads, each on its own connection, released together: what
    the calls returned, and what they raised."""
    barrier = threading.Barrier(callers)
    returned: list[T] = []
    raised: list[BaseException] = []

    def call() -> None:
        try:
            barrier.wait()
            returned.append(work())
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            raised.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return returned, raised


@pytest.mark.django_db(transaction=True)
def test_simultaneous_first_needs_make_one_customer_recorded_once(sandbox: Any) -> None:
    buyer = User.objects.create_user(email="rae@example.com", password="correct horse battery")
    callers = 6
    got, errors = _at_once(callers, lambda: buyer_customer_ensure(user=buyer).stripe_customer_id)
    assert errors == []
    customer = BuyerCustomer.objects.get(user=buyer)
    assert got == [customer.stripe_customer_id] * callers
    assert [c["id"] for c in sandbox.objects_of("customer", ...)] == [customer.stripe_customer_id]
    assert [to for _, to, _ in _history(customer)] == ["creating", "active"]


CONFIRMED = {"confirm": True, "return_url": "https://portal.invalid/return"}


def _setup_intent(client: Any, customer_id: str, **params: Any) -> Any:
    return client.v1.setup_intents.create(params={"customer": customer_id, **params})


def _customer_with_saved_card(client: Any, email: str) -> Any:
    """A Stripe customer with a card verified off session outside Gavel (a SetupIntent)."""
    remote = client.v1.customers.create(params={"email": email})
    _setup_intent(
        client, remote.id, usage="off_session", payment_method="pm_card_visa", **CONFIRMED
    )
    return remote


def test_cards_verified_off_session_in_stripe_before_gavel_are_adopted_once(
    sandbox: Any, make_user: Any
) -> None:
    client = sandbox.client()
    remote = client.v1.customers.create(params={"email": "sal@example.com"})
    visa = _setup_intent(
        client, remote.id, usage="off_session", payment_method="pm_card_visa", **CONFIRMED
    )
    # A card verified twice: the newest SetupIntent is the one recorded.
    twice = client.v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_amex"}})
    client.v1.payment_methods.attach(twice.id, params={"customer": remote.id})
    for _ in range(2):
        newest = _setup_intent(
            client, remote.id, usage="off_session", payment_method=twice.id, **CONFIRMED
        )
    # Not adopted: verified for on-session use only; attached without a SetupIntent; verified
    # then detached; never confirmed; Gavel's own (its setup flow records it).
    _setup_intent(
        client, remote.id, usage="on_session", payment_method="pm_card_mastercard", **CONFIRMED
    )
    client.v1.payment_methods.attach("pm_card_discover", params={"customer": remote.id})
    detached = _setup_intent(
        client, remote.id, usage="off_session", payment_method="pm_card_visa_debit", **CONFIRMED
    )
    client.v1.payment_methods.detach(detached.payment_method)
    _setup_intent(client, remote.id, usage="off_session")
    _setup_intent(
        client,
        remote.id,
        usage="off_session",
        payment_method="pm_card_mastercard_debit",
        metadata={"gavel_setup_id": "999"},
        **CONFIRMED,
    )
    sal = make_user("sal@example.com")
    (row,) = _import((sal, remote.id))
    assert not bidder_has_verified_payment_method(user=sal)

    for _ in range(2):  # a redelivered task adopts nothing twice
        assert buyer_customers_refresh(customer_ids=[row.pk]) == {"refreshed": 1, "failed": 0}
        adopted = list(
            VerifiedPaymentMethod.objects.order_by("setup__stripe_setup_intent_id").values_list(
                "user_id", "setup__stripe_setup_intent_id", "stripe_payment_method_id", "brand"
            )
        )
        assert adopted == sorted(
            [
                (sal.pk, visa.id, visa.payment_method, "visa"),
                (sal.pk, newest.id, twice.id, "amex"),
            ],
            key=lambda card: card[1],
        )
    assert bidder_has_verified_payment_method(user=sal)
    assert BuyerCustomer.objects.get(pk=row.pk).status == "active"
    for setup in PaymentMethodSetup.objects.all():
        assert (setup.customer_id, setup.status) == (row.pk, "succeeded")
        assert list(setup.transitions.order_by("id").values_list("to_status", "reason")) == [
            ("creating", "adopted: verified in Stripe before Gavel"),
            ("succeeded", "stripe: succeeded"),
        ]
    card = VerifiedPaymentMethod.objects.get(stripe_payment_method_id=visa.payment_method)
    assert (card.last4, card.exp_month, card.detached_at) == ("4242", 12, None)

    # Detached in Stripe afterwards: the webhook takes it off, and no refresh brings it back.
    client.v1.payment_methods.detach(visa.payment_method)
    handler = handler_for("payment_method.detached")
    assert handler is not None
    for raw in sandbox.list_events(type="payment_method.detached"):
        handler(incoming(raw))
    buyer_customer_refresh(customer_pk=row.pk)
    card.refresh_from_db()
    assert card.detached_at is not None
    assert VerifiedPaymentMethod.objects.count() == 2


def _payment(client: Any, customer_id: str, payment_method: str, **params: Any) -> Any:
    """A payment the portal took from the customer, confirmed at once."""
    return client.v1.payment_intents.create(
        params={
            "amount": 2500,
            "currency": "usd",
            "customer": customer_id,
            "payment_method": payment_method,
            **CONFIRMED,
            **params,
        }
    )


def test_cards_saved_off_session_by_payments_before_gavel_are_adopted_once(
    sandbox: Any, make_user: Any
) -> None:
    client = sandbox.client()
    remote = client.v1.customers.create(params={"email": "ted@example.com"})
    off_session = {"setup_future_usage": "off_session"}
    # Saved by a payment: authorized (manual capture), and paid; a card saved twice is
    # recorded with its newest payment.
    authorized = _payment(client, remote.id, "pm_card_visa", capture_method="manual", **off_session)
    paid = _payment(client, remote.id, "pm_card_mastercard", **off_session)
    again = _payment(client, remote.id, paid.payment_method, **off_session)
    # Verified by a SetupIntent too: the SetupIntent is the record.
    verified = _setup_intent(
        client, remote.id, usage="off_session", payment_method="pm_card_amex", **CONFIRMED
    )
    _payment(client, remote.id, verified.payment_method, **off_session)
    # Not adopted: saved for on-session use; saved then detached; Gavel's own payment
    # (its charging flow owns it); declined (nothing saved); paid with a card attached
    # without a request to save it.
    _payment(client, remote.id, "pm_card_discover", setup_future_usage="on_session")
    detached = _payment(client, remote.id, "pm_card_visa_debit", **off_session)
    client.v1.payment_methods.detach(detached.payment_method)
    _payment(
        client,
        remote.id,
        "pm_card_mastercard_debit",
        metadata={"gavel_attempt_id": "7"},
        **off_session,
    )
    with pytest.raises(Exception, match="card was declined"):  # the SDK's CardError
        _payment(client, remote.id, "pm_card_chargeDeclined", **off_session)
    unsaved = client.v1.payment_methods.create(
        params={"type": "card", "card": {"token": "tok_visa"}}
    )
    client.v1.payment_methods.attach(unsaved.id, params={"customer": remote.id})
    _payment(client, remote.id, unsaved.id)
    ted = make_user("ted@example.com")
    (row,) = _import((ted, remote.id))

    for _ in range(2):  # a redelivered task adopts nothing twice
        assert buyer_customers_refresh(customer_ids=[row.pk]) == {"refreshed": 1, "failed": 0}
        adopted = set(
            VerifiedPaymentMethod.objects.values_list(
                "setup__stripe_setup_intent_id",
                "setup__stripe_payment_intent_id",
                "stripe_payment_method_id",
                "brand",
            )
        )
        assert adopted == {
            (None, authorized.id, authorized.payment_method, "visa"),
            (None, again.id, paid.payment_method, "mastercard"),
            (verified.id, None, verified.payment_method, "amex"),
        }
    assert bidder_has_verified_payment_method(user=ted)
    setup = PaymentMethodSetup.objects.get(stripe_payment_intent_id=authorized.id)
    assert list(setup.transitions.order_by("id").values_list("to_status", "reason")) == [
        ("creating", f"adopted: saved by payment {authorized.id} in Stripe before Gavel"),
        ("succeeded", "stripe: succeeded"),
    ]
    # The app reading that setup gets it as recorded: no SetupIntent is made for it.
    setup_intents = len(sandbox.objects_of("setup_intent", ...))
    body = client_for(ted).post(f"/api/v1/payment-methods/setup/{setup.pk}/refresh/").json()
    assert {key: body[key] for key in ("setup_intent_id", "payment_intent_id", "status")} == {
        "setup_intent_id": None,
        "payment_intent_id": authorized.id,
        "status": "succeeded",
    }
    assert body["client_secret"] is None
    assert body["payment_method"]["last4"] == "4242"
    assert len(sandbox.objects_of("setup_intent", ...)) == setup_intents
    # Nor for a staff member reading it; another buyer may not.
    staff = make_user("staff@example.com", is_staff=True)
    assert payment_method_setup_refresh(setup_id=setup.pk, user=staff).setup.pk == setup.pk
    other = client_for(make_user("uninvited@example.com"))
    assert other.post(f"/api/v1/payment-methods/setup/{setup.pk}/refresh/").status_code == 403


def test_a_refresh_reads_the_intent_lists_only_while_a_card_is_left_to_account_for(
    sandbox: Any, make_user: Any, settings: Any
) -> None:
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    client = sandbox.client()
    bare = client.v1.customers.create(params={"email": "ula@example.com"})
    verified = _customer_with_saved_card(client, "val@example.com")
    rows = _import(
        (make_user("ula@example.com"), bare.id), (make_user("val@example.com"), verified.id)
    )
    # Any list of intents would fail: a customer without cards reads neither, one whose card a
    # SetupIntent verified reads no payments.
    for path in ("/v1/setup_intents", "/v1/payment_intents"):
        sandbox.fail_requests(500, method="GET", path=path, times=10)
    buyer_customer_refresh(customer_pk=rows[0].pk)
    sandbox.clear_faults()
    sandbox.fail_requests(500, method="GET", path="/v1/payment_intents", times=10)
    buyer_customer_refresh(customer_pk=rows[1].pk)
    assert [row.status for row in BuyerCustomer.objects.order_by("id")] == ["active", "active"]
    assert VerifiedPaymentMethod.objects.get().user.email == "val@example.com"
    # A card still unaccounted for makes the refresh read the payments: it fails, and the
    # janitor comes back.
    client.v1.payment_methods.attach("pm_card_discover", params={"customer": verified.id})
    with pytest.raises(ServiceError):
        buyer_customer_refresh(customer_pk=rows[1].pk)
    sandbox.clear_faults()
    # Pages are read as far as needed: the newest of 101 SetupIntents verifies the only card,
    # and the second page, which would fail, is never asked for.
    paged = client.v1.customers.create(params={"email": "wes@example.com"})
    for _ in range(100):
        _setup_intent(client, paged.id, usage="off_session")
    newest = _setup_intent(
        client, paged.id, usage="off_session", payment_method="pm_card_visa", **CONFIRMED
    )
    (row,) = _import((make_user("wes@example.com"), paged.id))[2:]
    sandbox.fail_requests(500, nth=2, method="GET", path="/v1/setup_intents", times=10)
    buyer_customer_refresh(customer_pk=row.pk)
    assert PaymentMethodSetup.objects.get(customer_id=row.pk).stripe_setup_intent_id == newest.id


def test_a_card_the_portal_saves_after_the_import_is_adopted_when_stripe_says_it_attached(
    sandbox: Any, make_user: Any, settings: Any
) -> None:
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    client = sandbox.client()
    remote = client.v1.customers.create(params={"email": "xia@example.com"})
    xia = make_user("xia@example.com")
    (row,) = _import((xia, remote.id))
    assert buyer_customers_refresh(customer_ids=[row.pk]) == {"refreshed": 1, "failed": 0}
    assert not bidder_has_verified_payment_method(user=xia)
    handler = handler_for("payment_method.attached")
    assert handler is not None
    # While both systems run, the portal takes a payment that saves the buyer's card, and a
    # card is attached without being saved for off-session use.
    saved = _payment(
        client, remote.id, "pm_card_visa", capture_method="manual", setup_future_usage="off_session"
    )
    client.v1.payment_methods.attach("pm_card_discover", params={"customer": remote.id})
    sandbox.fail_requests(500, method="GET", path="/v1/customers/", times=1)
    events = sandbox.list_events(type="payment_method.attached")
    assert len(events) == 2
    with pytest.raises(ServiceError):  # Stripe did not answer: the pipeline retries the event
        handler(incoming(events[-1]))
    for raw in [*events, *events]:  # each delivered twice, in any order
        handler(incoming(raw))
    (card,) = VerifiedPaymentMethod.objects.filter(user=xia)
    assert (card.stripe_payment_method_id, card.setup.stripe_payment_intent_id) == (
        saved.payment_method,
        saved.id,
    )
    assert bidder_has_verified_payment_method(user=xia)
    assert PaymentMethodSetup.objects.count() == 1
    # A customer Gavel made itself records its cards through its own setup flow: the event
    # reads nothing from Stripe (every read would fail).
    own = buyer_customer_ensure(user=make_user("yan@example.com"))
    assert own.stripe_customer_id is not None
    client.v1.payment_methods.attach("pm_card_visa", params={"customer": own.stripe_customer_id})
    sandbox.fail_requests(500, method="GET", times=10)
    assert not buyer_customer_card_attached_apply(
        stripe_customer_id=own.stripe_customer_id, payment_method_id="pm_any"
    )
    (own_event,) = [
        raw
        for raw in sandbox.list_events(type="payment_method.attached")
        if raw["data"]["object"]["customer"] == own.stripe_customer_id
    ]
    handler(incoming(own_event))
    # Nor does one Gavel made after the imported customer was forgotten.
    sandbox.clear_faults()
    client.v1.customers.delete(remote.id)
    assert buyer_customer_deleted_apply(stripe_customer_id=remote.id)
    renewed = buyer_customer_ensure(user=xia)
    assert renewed.stripe_customer_id is not None
    sandbox.fail_requests(500, method="GET", times=10)
    assert not buyer_customer_card_attached_apply(
        stripe_customer_id=renewed.stripe_customer_id, payment_method_id="pm_any"
    )


def test_cards_stripe_does_not_list_leave_the_customer_unsynced_for_the_janitor(
    sandbox: Any, make_user: Any, settings: Any
) -> None:
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    client = sandbox.client()
    remote = _customer_with_saved_card(client, "tam@example.com")
    (row,) = _import((make_user("tam@example.com"), remote.id))
    sandbox.fail_requests(500, method="GET", path="/v1/setup_intents")
    with pytest.raises(ServiceError):
        buyer_customer_refresh(customer_pk=row.pk)
    assert BuyerCustomer.objects.get(pk=row.pk).status == "unsynced"
    assert not PaymentMethodSetup.objects.exists()
    assert buyer_customers_janitor() == {"refreshed": 1, "failed": 0}
    assert BuyerCustomer.objects.get(pk=row.pk).status == "active"
    assert VerifiedPaymentMethod.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_simultaneous_refreshes_adopt_a_saved_card_once(sandbox: Any) -> None:
    client = sandbox.client()
    remote = _customer_with_saved_card(client, "uma@example.com")
    buyer = User.objects.create_user(email="uma@example.com", password="correct horse battery")
    (row,) = _import((buyer, remote.id))
    _, errors = _at_once(4, lambda: buyer_customer_refresh(customer_pk=row.pk))
    assert errors == []
    assert PaymentMethodSetup.objects.count() == 1
    assert VerifiedPaymentMethod.objects.count() == 1
    assert list(
        BuyerCustomer.objects.get(pk=row.pk)
        .transitions.order_by("id")
        .values_list("to_status", flat=True)
    ) == ["unsynced", "active"]


@pytest.mark.django_db(transaction=True)
def test_a_customer_replaced_while_its_cards_are_read_is_left_as_it_now_is(sandbox: Any) -> None:
    client = sandbox.client()
    old = _customer_with_saved_card(client, "vic@example.com")
    buyer = User.objects.create_user(email="vic@example.com", password="correct horse battery")
    (row,) = _import((buyer, old.id))
    # The refresh's read of the SetupIntents answers late; meanwhile Stripe deletes the
    # customer, the webhook forgets it and the buyer gets a new one.
    held = sandbox.add_latency(5.0, method="GET", path="/v1/setup_intents", times=1)

    def refresh() -> None:
        try:
            buyer_customer_refresh(customer_pk=row.pk)
        finally:
            connection.close()

    reading = threading.Thread(target=refresh)
    reading.start()
    deadline = time.monotonic() + 30
    while not held.seen and time.monotonic() < deadline:  # the refresh is reading the list
        time.sleep(0.01)
    assert held.seen == 1
    client.v1.customers.delete(old.id)
    assert buyer_customer_deleted_apply(stripe_customer_id=old.id)
    renewed = buyer_customer_ensure(user=buyer)
    # The refresh still waits for its answer: the test did what it means to (a box too slow
    # to do the above in the latency's 5 s fails here rather than passing untested).
    assert reading.is_alive()
    reading.join()
    customer = BuyerCustomer.objects.get(pk=row.pk)
    assert customer.stripe_customer_id == renewed.stripe_customer_id != old.id
    assert customer.status == "active"
    # The old customer's card is not adopted onto the new one.
    assert not PaymentMethodSetup.objects.exists()
    assert not bidder_has_verified_payment_method(user=buyer)
    assert [to for _, to, _ in _history(customer)] == ["unsynced", "creating", "active"]
