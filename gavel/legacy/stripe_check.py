"""The optional Stripe cross-check of verification: does Stripe agree with what was imported?

For a deterministic sample of loaded (not quarantined) payments with at least one valid Stripe
id, every id the portal stored is read through the gateway (read-only calls) and compared with
the legacy facts:

- PaymentIntent (``pi_``, ``payment_intent_retrieve``): the status the final transaction state
  implies, the amount, the currency, and for a captured payment the amount received;
- charge (``ch_``, ``charge_retrieve``): the amount, the currency, and the captured amount
  (``sum_cents`` once captured, 0 before);
- payment on the seller's connected account (a ``py_`` in the charge column: the charge a
  transfer makes on its destination, ``charge_retrieve`` on that account): the legacy state is
  captured; the amount is ``sum_cents`` (a destination charge with an application fee moves the
  whole amount and takes the fee back from the account) or the seller's net (a transfer of the
  net: ``transfer_data[amount]``, or a separate transfer, which must then be the portal's
  ``tr_``), the currency, nothing refunded;
- transfer (``tr_``, ``transfer_retrieve``): the amount is the seller's net
  (``sum_cents − commission_cents − buyer_commission_cents``), the destination is the seller's
  connected account, the currency, nothing reversed;
- payout (``po_``, ``payout_retrieve`` on the seller's connected account): the amount is the
  seller's net, the currency, and it did not fail or get canceled.

For a deterministic sample of the portal's Stripe accounts rows (every one staged, conflicts
included: Stripe should know each id the portal stored), each valid id is read too:

- connected account (``acct_``, ``account_retrieve``): it exists and is connected to this
  platform (Stripe answers ``resource_missing`` otherwise);
- customer (``cus_``, ``customer_retrieve``): it exists in this Stripe account and was not
  deleted.

An id Stripe does not know is ``missing in Stripe``; Stripe being unavailable is counted apart
(not a difference, not an agreement either).
"""

# SQL here is built from identifiers in this code, never from input; values are parameters.
# ruff: noqa: S608
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from django.db import connection

from gavel.gateway.accounts import account_retrieve
from gavel.gateway.customers import customer_retrieve
from gavel.gateway.errors import GatewayFinalError, GatewayRetryableError
from gavel.gateway.payment_intents import charge_retrieve, payment_intent_retrieve
from gavel.gateway.payouts import payout_retrieve
from gavel.gateway.transfers import transfer_retrieve
from gavel.legacy.reader import stripe_id_sql
from gavel.legacy.states import CAPTURED_STATES, LegacyState

S = LegacyState
# Final legacy state -> the PaymentIntent statuses Stripe may show for it.
EXPECTED_INTENT_STATUSES: dict[str, frozenset[str]] = {
    **{state.value: frozenset({"succeeded"}) for state in CAPTURED_STATES},
    S.PREAUTHORIZED.value: frozenset({"requires_capture"}),
    S.PENDING_EXT.value: frozenset({"requires_capture"}),
    S.REJECTED.value: frozenset({"canceled"}),
    S.ERRORED.value: frozenset({"canceled"}),
    S.PAYMENT_INTENT_ACTION_EXPIRED.value: frozenset({"canceled", "requires_action"}),
    S.PAYMENT_INTENT_REQUIRES_ACTION.value: frozenset({"requires_action"}),
    S.PAYMENT_INTENT_FAILED.value: frozenset({"requires_payment_method", "canceled"}),
    S.INITIATED.value: frozenset(
        {"requires_payment_method", "requires_confirmation", "requires_action", "canceled"}
    ),
}
FAILED_PAYOUT_STATUSES = frozenset({"failed", "canceled"})

INTENT, CHARGE, TRANSFER, PAYOUT = "payment_intent", "charge", "transfer", "payout"
DESTINATION_PAYMENT = "destination_payment"
ACCOUNT, CUSTOMER = "account", "customer"
KINDS = (INTENT, CHARGE, DESTINATION_PAYMENT, TRANSFER, PAYOUT, ACCOUNT, CUSTOMER)

_INTENT_VALID = stripe_id_sql("stripe_payment_intent_id", "pay.stripe_payment_intent_id")
_CHARGE_VALID = stripe_id_sql("stripe_charge_id", "pay.stripe_charge_id")
_TRANSFER_VALID = stripe_id_sql("stripe_transfer_id", "pay.stripe_transfer_id")
_SELLER_VALID = stripe_id_sql("stripe_seller_id", "a.stripe_seller_id")
_CUSTOMER_VALID = stripe_id_sql("stripe_customer_id", "a.stripe_customer_id")
ACCOUNTS_SAMPLE_SQL = f"""
SELECT a.legacy_id, CASE WHEN {_SELLER_VALID} THEN a.stripe_seller_id END,
       CASE WHEN {_CUSTOMER_VALID} THEN a.stripe_customer_id END
FROM legacy_legacystripeaccount a
WHERE {_SELLER_VALID} OR {_CUSTOMER_VALID}
ORDER BY md5(a.legacy_id::text)
LIMIT %s
"""
SAMPLE_SQL = f"""
SELECT pay.legacy_id, pay.sum_cents, pay.commission_cents, pay.buyer_commission_cents,
       upper(pay.currency),
       (SELECT t.to_state FROM legacy_legacyordertransition t
        WHERE t.transaction_legacy_id = pay.transaction_legacy_id
        ORDER BY t.sort_key DESC, t.legacy_id DESC LIMIT 1),
       CASE WHEN {_INTENT_VALID}
            THEN pay.stripe_payment_intent_id END,
       CASE WHEN {_CHARGE_VALID} THEN pay.stripe_charge_id END,
       CASE WHEN {_TRANSFER_VALID} THEN pay.stripe_transfer_id END,
       (SELECT a.stripe_seller_id FROM legacy_legacystripeaccount a
        WHERE a.person_legacy_id = pay.receiver_legacy_id
          AND {_SELLER_VALID}
        ORDER BY a.legacy_id LIMIT 1)
FROM legacy_legacypayment pay
WHERE NOT pay.is_quarantined
  AND ({_INTENT_VALID}
       OR {_CHARGE_VALID}
       OR {_TRANSFER_VALID})
ORDER BY md5(pay.legacy_id::text)
LIMIT %s
"""


@dataclass(frozen=True, slots=True)
class LegacyFacts:
    """What the portal says about one payment."""

    legacy_id: int
    sum_cents: int
    seller_net_cents: int
    currency: str
    state: str
    seller_account_id: str | None
    transfer_id: str | None = None  # the portal's valid ``tr_`` or ``po_``, if any


@dataclass(frozen=True, slots=True)
class StripeCheck:
    legacy_id: int
    kind: str  # one of KINDS
    object_id: str
    problem: str  # "" when Stripe agrees


@dataclass(frozen=True, slots=True)
class CrossCheck:
    sampled: int  # payments in the sample
    accounts_sampled: int  # the portal's Stripe accounts rows in the sample
    checks: list[StripeCheck]  # ``legacy_id``: the payment's, or the Stripe accounts row's
    unanswered: Counter[str]  # per kind: Stripe could not answer (retry later)


def _intent_problems(facts: LegacyFacts, intent_id: str) -> list[str]:
    intent = payment_intent_retrieve(payment_intent_id=intent_id)
    problems = []
    expected = EXPECTED_INTENT_STATUSES.get(facts.state, frozenset())
    if intent.status not in expected:
        problems.append(f"status {intent.status}, legacy state {facts.state}")
    if intent.amount_minor != facts.sum_cents:
        problems.append(f"amount {intent.amount_minor} != sum_cents {facts.sum_cents}")
    if intent.currency != facts.currency:
        problems.append(f"currency {intent.currency} != {facts.currency}")
    if facts.state in CAPTURED_STATES and intent.amount_received_minor != facts.sum_cents:
        problems.append(f"received {intent.amount_received_minor} != sum_cents {facts.sum_cents}")
    return problems


def _charge_problems(facts: LegacyFacts, charge_id: str) -> list[str]:
    charge = charge_retrieve(charge_id=charge_id)
    problems = []
    if charge.amount_minor != facts.sum_cents:
        problems.append(f"amount {charge.amount_minor} != sum_cents {facts.sum_cents}")
    if charge.currency != facts.currency:
        problems.append(f"currency {charge.currency} != {facts.currency}")
    captured = facts.sum_cents if facts.state in CAPTURED_STATES else 0
    if charge.amount_captured_minor != captured:
        problems.append(
            f"captured {charge.amount_captured_minor} != {captured} (legacy state {facts.state})"
        )
    return problems


def _destination_payment_problems(facts: LegacyFacts, payment_id: str) -> list[str]:
    if not facts.seller_account_id:
        return ["no seller account to read the payment on"]
    payment = charge_retrieve(charge_id=payment_id, account_id=facts.seller_account_id)
    problems = []
    if facts.state not in CAPTURED_STATES:
        problems.append(f"a payment to the seller, legacy state {facts.state} (not captured)")
    separate = facts.transfer_id if (facts.transfer_id or "").startswith("tr_") else None
    if separate is not None and payment.source_transfer_id != separate:
        problems.append(f"made by transfer {payment.source_transfer_id}, the portal's {separate}")
    expected = {facts.seller_net_cents} if separate else {facts.sum_cents, facts.seller_net_cents}
    if payment.amount_minor not in expected:
        wanted = " or ".join(str(amount) for amount in sorted(expected))
        problems.append(f"amount {payment.amount_minor} != {wanted} (sum_cents or seller net)")
    if payment.currency != facts.currency:
        problems.append(f"currency {payment.currency} != {facts.currency}")
    if payment.amount_refunded_minor:
        problems.append(f"refunded {payment.amount_refunded_minor}")
    return problems


def _transfer_problems(facts: LegacyFacts, transfer_id: str) -> list[str]:
    transfer = transfer_retrieve(transfer_id=transfer_id)
    problems = []
    if transfer.amount_minor != facts.seller_net_cents:
        problems.append(f"amount {transfer.amount_minor} != seller net {facts.seller_net_cents}")
    if transfer.destination != (facts.seller_account_id or ""):
        problems.append(
            f"destination {transfer.destination} != seller account {facts.seller_account_id}"
        )
    if transfer.currency != facts.currency:
        problems.append(f"currency {transfer.currency} != {facts.currency}")
    if transfer.amount_reversed_minor:
        problems.append(f"reversed {transfer.amount_reversed_minor}")
    return problems


def _payout_problems(facts: LegacyFacts, payout_id: str) -> list[str]:
    if not facts.seller_account_id:
        return ["no seller account to read the payout on"]
    payout = payout_retrieve(account_id=facts.seller_account_id, payout_id=payout_id)
    problems = []
    if payout.amount_minor != facts.seller_net_cents:
        problems.append(f"amount {payout.amount_minor} != seller net {facts.seller_net_cents}")
    if payout.currency != facts.currency:
        problems.append(f"currency {payout.currency} != {facts.currency}")
    if payout.status in FAILED_PAYOUT_STATUSES:
        problems.append(f"status {payout.status}")
    return problems


def _account_problems(account_id: str) -> list[str]:
    account_retrieve(account_id=account_id)  # missing or not connected: GatewayFinalError
    return []


def _customer_problems(customer_id: str) -> list[str]:
    return ["deleted in Stripe"] if customer_retrieve(customer_id=customer_id).deleted else []


CHECKERS: dict[str, Callable[[LegacyFacts, str], list[str]]] = {
    INTENT: _intent_problems,
    CHARGE: _charge_problems,
    DESTINATION_PAYMENT: _destination_payment_problems,
    TRANSFER: _transfer_problems,
    PAYOUT: _payout_problems,
}


def _ids_to_check(
    intent_id: str | None, charge_id: str | None, transfer_id: str | None
) -> Iterator[tuple[str, str]]:
    if intent_id:
        yield INTENT, intent_id
    if charge_id:
        yield (CHARGE if charge_id.startswith("ch_") else DESTINATION_PAYMENT), charge_id
    if transfer_id:
        yield (TRANSFER if transfer_id.startswith("tr_") else PAYOUT), transfer_id


def _check(
    checks: list[StripeCheck],
    unanswered: Counter[str],
    legacy_id: int,
    kind: str,
    object_id: str,
    problems_of: Callable[[str], list[str]],
) -> None:
    """One read through the gateway: a check (with its problems), or one more unanswered."""
    try:
        problems = problems_of(object_id)
    except GatewayFinalError:
        problems = ["missing in Stripe"]
    except GatewayRetryableError:
        unanswered[kind] += 1
        return
    checks.append(StripeCheck(legacy_id, kind, object_id, "; ".join(problems)))


def stripe_cross_check(*, sample: int) -> CrossCheck:
    """Check up to ``sample`` payments, every Stripe id of each, and up to ``sample`` of the
    portal's Stripe accounts rows, each valid account and customer id."""
    with connection.cursor() as cursor:
        cursor.execute(SAMPLE_SQL, [sample])
        rows = cursor.fetchall()
        cursor.execute(ACCOUNTS_SAMPLE_SQL, [sample])
        account_rows = cursor.fetchall()
    checks: list[StripeCheck] = []
    unanswered: Counter[str] = Counter()
    for row in rows:
        legacy_id, sum_cents, commission, buyer_commission, currency, state = row[:6]
        intent_id, charge_id, transfer_id, seller_account_id = row[6:]
        facts = LegacyFacts(
            legacy_id=int(legacy_id),
            sum_cents=sum_cents,
            seller_net_cents=sum_cents - commission - buyer_commission,
            currency=currency,
            state=state or "",
            seller_account_id=seller_account_id,
            transfer_id=transfer_id,
        )
        for kind, object_id in _ids_to_check(intent_id, charge_id, transfer_id):
            checker = partial(CHECKERS[kind], facts)
            _check(checks, unanswered, facts.legacy_id, kind, object_id, checker)
    for legacy_id, account_id, customer_id in account_rows:
        for kind, object_id, problems_of in (
            (ACCOUNT, account_id, _account_problems),
            (CUSTOMER, customer_id, _customer_problems),
        ):
            if object_id:
                _check(checks, unanswered, int(legacy_id), kind, object_id, problems_of)
    return CrossCheck(len(rows), len(account_rows), checks, unanswered)
