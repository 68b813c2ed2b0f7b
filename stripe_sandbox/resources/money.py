"""Money movement: balance transactions, balance, transfers (+ reversals), application fees
(+ refunds), refunds, payouts and disputes.

Every movement of money is a balance transaction (txn_) on exactly one account; an
account's balance is the sum of its balance transactions' ``net`` (``pending`` while
``available_on`` is in the future, ``available`` afterwards). The invariant "sum of balance
transactions == balance" therefore holds by construction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stripe_sandbox.errors import SandboxError, StripeError, invalid, no_such
from stripe_sandbox.resources import render_hook, task
from stripe_sandbox.resources.accounts import (
    connected,
    default_bank,
    has_capability,
    payout_failure_code,
)
from stripe_sandbox.resources.common import apply_metadata, created_filter, list_of
from stripe_sandbox.router import route

if TYPE_CHECKING:
    from stripe_sandbox.core import Ctx, Sandbox

Obj = dict[str, Any]

REPORTING = {
    "charge": "charge",
    "payment": "charge",
    "refund": "refund",
    "payment_refund": "refund",
    "transfer": "transfer",
    "transfer_refund": "transfer_reversal",
    "application_fee": "platform_earning",
    "application_fee_refund": "platform_earning_refund",
    "payout": "payout",
    "payout_failure": "payout_reversal",
    "payout_cancel": "payout_reversal",
    "adjustment": "dispute",
    "refund_failure": "refund_failure",
}

FAILURE_MESSAGES = {
    "account_closed": "The bank account has been closed.",
    "no_account": "The bank account details on file are probably incorrect. No bank account "
    "could be located with those details.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "debit_not_authorized": "Debit transactions are not approved on the bank account.",
    "invalid_currency": "The bank was unable to process this payout because of its currency.",
    "could_not_process": "The bank could not process this payout.",
}


def prorate(part: int, total: int, base: int) -> int:
    """``base * part / total`` rounded half up (how proportional reversals are computed)."""
    if total <= 0:
        return 0
    return (2 * part * base + total) // (2 * total)


# ---------------------------------------------------------------- ledger
def add_bt(
    sb: Sandbox,
    owner: str | None,
    amount: int,
    currency: str,
    type: str,
    source: str | None,
    *,
    fee: int = 0,
    fee_details: list[Obj] | None = None,
    available_on: int | None = None,
    description: str | None = None,
    reporting_category: str | None = None,
) -> Obj:
    if available_on is not None and available_on > sb.now():
        key = f"{owner}|{available_on}"
        if key not in sb._balance_alerts:
            sb._balance_alerts.add(key)
            sb.schedule(available_on, "balance_available", account=owner)
    return sb.new_object(
        "balance_transaction",
        "txn",
        owner,
        amount=amount,
        available_on=sb.now() if available_on is None else available_on,
        balance_type="payments",
        currency=currency,
        description=description,
        exchange_rate=None,
        fee=fee,
        fee_details=fee_details or [],
        net=amount - fee,
        reporting_category=reporting_category or REPORTING.get(type, type),
        source=source,
        status="pending",
        type=type,
    )


@task("balance_available")
def _balance_available(sb: Sandbox, account: str | None) -> None:
    """Stripe's ``balance.available``: pending funds of ``account`` became available."""
    sb._balance_alerts.discard(f"{account}|{sb.now()}")
    bal = balance_of(sb, account)
    sb.emit(None, "balance.available", {"_owner": account}, owner=account, data_object=bal)


@render_hook("balance_transaction")
def _render_bt(sb: Sandbox, obj: Obj, out: Obj) -> None:
    out["status"] = "available" if obj["available_on"] <= sb.now() else "pending"


def balance_of(sb: Sandbox, owner: str | None) -> Obj:
    now = sb.now()
    avail: dict[str, int] = {}
    pend: dict[str, int] = {}
    for bt in sb.objects_of("balance_transaction", owner):
        cur = bt["currency"]
        avail.setdefault(cur, 0)
        pend.setdefault(cur, 0)
        if bt["available_on"] <= now:
            avail[cur] += bt["net"]
        else:
            pend[cur] += bt["net"]
    if not avail:
        avail[sb.default_currency] = 0
        pend[sb.default_currency] = 0
    return {
        "object": "balance",
        "available": [
            {"amount": a, "currency": c, "source_types": {"card": a}}
            for c, a in sorted(avail.items())
        ],
        "connect_reserved": [{"amount": 0, "currency": c} for c in sorted(avail)],
        "livemode": False,
        "pending": [
            {"amount": a, "currency": c, "source_types": {"card": a}}
            for c, a in sorted(pend.items())
        ],
        "refund_and_dispute_prefunding": {
            "available": [{"amount": 0, "currency": c} for c in sorted(avail)],
            "pending": [{"amount": 0, "currency": c} for c in sorted(avail)],
        },
    }


def available_amount(sb: Sandbox, owner: str | None, currency: str) -> int:
    now = sb.now()
    return sum(
        bt["net"]
        for bt in sb.objects_of("balance_transaction", owner)
        if bt["currency"] == currency and bt["available_on"] <= now
    )


def _insufficient() -> StripeError:
    return StripeError(
        400,
        "You have insufficient available funds in your Stripe account. Try adding funds "
        "directly to your available balance by creating Charges using the 4000000000000077 "
        "Visa test card. For more details, see https://stripe.com/docs/testing.",
        code="balance_insufficient",
    )


@route("GET", "/v1/balance", "BalanceRetrieveParams")
def get_balance(ctx: Ctx, p: Obj) -> Obj:
    return balance_of(ctx.sb, ctx.account)


@route("GET", "/v1/balance_transactions/{txn_id}", "BalanceTransactionRetrieveParams")
def retrieve_bt(ctx: Ctx, p: Obj, txn_id: str) -> Obj:
    return ctx.sb.render(ctx.sb.get(ctx, txn_id, "balance_transaction"))


@route("GET", "/v1/balance_transactions", "BalanceTransactionListParams")
def list_bts(ctx: Ctx, p: Obj) -> Obj:
    items = ctx.sb.objects_of("balance_transaction", ctx.account)
    if "type" in p:
        items = [b for b in items if b["type"] == p["type"]]
    if "source" in p:
        items = [b for b in items if b.get("source") == p["source"]]
    if "currency" in p:
        items = [b for b in items if b["currency"] == str(p["currency"]).lower()]
    if "payout" in p:
        items = [b for b in items if b.get("_payout") == p["payout"]]
    items = created_filter(items, p.get("created"))
    return ctx.sb.paginate(ctx, items, p, "/v1/balance_transactions")


# ---------------------------------------------------------------- transfers
def _destination_payment(
    sb: Sandbox,
    acct_id: str,
    tr: Obj,
    available_on: int,
    fee: int = 0,
    fee_details: list[Obj] | None = None,
) -> Obj:
    py = sb.new_object(
        "charge",
        "py",
        acct_id,
        amount=tr["amount"],
        amount_captured=tr["amount"],
        amount_refunded=0,
        captured=True,
        currency=tr["currency"],
        paid=True,
        status="succeeded",
        source_transfer=tr["id"],
        calculated_statement_descriptor=None,
        payment_method_details=None,
        outcome=None,
    )
    bt = add_bt(
        sb,
        acct_id,
        tr["amount"],
        tr["currency"],
        "payment",
        py["id"],
        fee=fee,
        fee_details=fee_details,
        available_on=available_on,
    )
    py["balance_transaction"] = bt["id"]
    return py


def create_transfer_internal(
    ctx: Ctx,
    amount: int,
    currency: str,
    dest: Obj,
    source_charge: Obj | None,
    transfer_group: str | None = None,
    description: str | None = None,
    metadata: Any = None,
    app_fee: int = 0,
) -> Obj:
    sb = ctx.sb
    available_on = sb.now()
    if source_charge is not None and source_charge.get("balance_transaction"):
        src_bt = sb.objects[source_charge["balance_transaction"]]
        available_on = max(src_bt["available_on"], sb.now())
    tr = sb.new_object(
        "transfer",
        "tr",
        None,
        amount=amount,
        currency=currency,
        description=description,
        destination=dest["id"],
        source_transaction=source_charge["id"] if source_charge else None,
        transfer_group=transfer_group,
    )
    apply_metadata(tr, metadata)
    bt = add_bt(sb, None, -amount, currency, "transfer", tr["id"], available_on=available_on)
    tr["balance_transaction"] = bt["id"]
    fee_details = []
    if app_fee:
        fee_details = [
            {
                "amount": app_fee,
                "application": "ca_sandbox",
                "currency": currency,
                "description": "Application fee",
                "type": "application_fee",
            }
        ]
    py = _destination_payment(sb, dest["id"], tr, available_on, app_fee, fee_details)
    tr["destination_payment"] = py["id"]
    sb.emit(ctx, "transfer.created", tr)
    return tr


@render_hook("transfer")
def _render_transfer(sb: Sandbox, obj: Obj, out: Obj) -> None:
    revs = [r for r in sb.objects_of("transfer_reversal") if r["transfer"] == obj["id"]]
    out["reversals"] = list_of(sb, revs, f"/v1/transfers/{obj['id']}/reversals")


def check_transfer_destination(sb: Sandbox, dest_id: str, param: str) -> Obj:
    dest = connected(sb, dest_id, "destination")
    if not has_capability(dest, "transfers"):
        raise invalid(
            "Your destination account needs to have at least one of the following capabilities "
            "enabled: transfers, crypto_transfers, legacy_payments",
            param=param,
            code="insufficient_capabilities_for_transfer",
        )
    return dest


@route("POST", "/v1/transfers", "TransferCreateParams")
def create_transfer(ctx: Ctx, p: Obj) -> Obj:
    sb = ctx.sb
    if ctx.account is not None:
        raise invalid("Transfers can only be created by platforms.", param="destination")
    amount = p.get("amount")
    if amount is None:
        raise invalid("Missing required param: amount.", param="amount")
    if amount < 1:
        raise invalid("This value must be greater than or equal to 1.", param="amount")
    currency = p["currency"].lower()
    dest = check_transfer_destination(sb, p["destination"], "destination")
    src = None
    if p.get("source_transaction"):
        src = sb.find(p["source_transaction"], "charge")
        if src is None or src["_owner"] is not None:
            raise no_such("charge", p["source_transaction"], "source_transaction")
        if src["status"] != "succeeded" or not src["captured"]:
            raise invalid(
                "The source_transaction charge must be succeeded and captured.",
                param="source_transaction",
            )
        if src["currency"] != currency:
            raise invalid(
                "The currency of source_transaction's balance transaction "
                f"({src['currency']}) must be the same as the transfer currency ({currency})",
                param="currency",
            )
        already = sum(
            t["amount"] - t["amount_reversed"]
            for t in sb.objects_of("transfer", None)
            if t.get("source_transaction") == src["id"]
        )
        if amount + already > src["amount_captured"] - src["amount_refunded"]:
            raise invalid(
                "Transfer amount exceeds the amount available from the source transaction.",
                param="amount",
                code="transfer_source_balance_parameters_mismatch",
            )
    elif available_amount(sb, None, currency) < amount:
        raise _insufficient()
    tr = create_transfer_internal(
        ctx,
        amount,
        currency,
        dest,
        src,
        p.get("transfer_group"),
        p.get("description"),
        p.get("metadata"),
    )
    return sb.render(tr)


@route("GET", "/v1/transfers/{tr_id}", "TransferRetrieveParams")
def retrieve_transfer(ctx: Ctx, p: Obj, tr_id: str) -> Obj:
    return ctx.sb.render(ctx.sb.get(ctx, tr_id, "transfer"))


@route("POST", "/v1/transfers/{tr_id}", "TransferUpdateParams")
def update_transfer(ctx: Ctx, p: Obj, tr_id: str) -> Obj:
    sb = ctx.sb
    tr = sb.get(ctx, tr_id, "transfer")
    prev: Obj = {}
    if "description" in p:
        prev["description"] = tr["description"]
        tr["description"] = p["description"] or None
    apply_metadata(tr, p.get("metadata"), prev)
    if prev:
        sb.emit(ctx, "transfer.updated", tr, prev)
    return sb.render(tr)


@route("GET", "/v1/transfers", "TransferListParams")
def list_transfers(ctx: Ctx, p: Obj) -> Obj:
    items = ctx.sb.objects_of("transfer", ctx.account)
    if "destination" in p:
        items = [t for t in items if t["destination"] == p["destination"]]
    if "transfer_group" in p:
        items = [t for t in items if t.get("transfer_group") == p["transfer_group"]]
    items = created_filter(items, p.get("created"))
    return ctx.sb.paginate(ctx, items, p, "/v1/transfers")


def reverse_transfer_internal(
    ctx: Ctx,
    tr: Obj,
    amount: int,
    source_refund: str | None = None,
    metadata: Any = None,
    description: str | None = None,
) -> Obj:
    sb = ctx.sb
    remaining = tr["amount"] - tr["amount_reversed"]
    if amount > remaining:
        raise invalid(
            f"Transfer reversal amount ({amount}) is greater than the amount remaining to be "
            f"reversed on transfer {tr['id']} ({remaining}).",
            param="amount",
        )
    trr = sb.new_object(
        "transfer_reversal",
        "trr",
        None,
        amount=amount,
        currency=tr["currency"],
        transfer=tr["id"],
        source_refund=source_refund,
    )
    apply_metadata(trr, metadata)
    bt = add_bt(sb, None, amount, tr["currency"], "transfer_refund", trr["id"])
    trr["balance_transaction"] = bt["id"]
    py = sb.objects.get(tr.get("destination_payment") or "")
    if py is not None:
        pyr = sb.new_object(
            "refund",
            "pyr",
            py["_owner"],
            amount=amount,
            charge=py["id"],
            currency=tr["currency"],
            status="succeeded",
            reason=None,
            description=description,
        )
        pbt = add_bt(sb, py["_owner"], -amount, tr["currency"], "payment_refund", pyr["id"])
        pyr["balance_transaction"] = pbt["id"]
        py["amount_refunded"] += amount
        py["refunded"] = py["amount_refunded"] >= py["amount"]
        trr["destination_payment_refund"] = pyr["id"]
    prev = {"amount_reversed": tr["amount_reversed"], "reversed": tr["reversed"]}
    tr["amount_reversed"] += amount
    tr["reversed"] = tr["amount_reversed"] >= tr["amount"]
    if not tr["reversed"]:
        prev.pop("reversed")
    sb.emit(ctx, "transfer.reversed", tr, prev)
    return trr


@route("POST", "/v1/transfers/{tr_id}/reversals", "TransferCreateReversalParams")
def create_reversal(ctx: Ctx, p: Obj, tr_id: str) -> Obj:
    sb = ctx.sb
    tr = sb.get(ctx, tr_id, "transfer")
    remaining = tr["amount"] - tr["amount_reversed"]
    amount = p.get("amount", remaining)
    if remaining <= 0:
        raise invalid(f"Transfer {tr_id} has already been fully reversed.", param="amount")
    trr = reverse_transfer_internal(ctx, tr, amount, None, p.get("metadata"), p.get("description"))
    if p.get("refund_application_fee") and tr.get("source_transaction"):
        ch = sb.objects.get(tr["source_transaction"])
        fee = sb.find(ch.get("application_fee") if ch else None, "application_fee")
        if fee is not None:
            refund_fee_internal(ctx, fee, prorate(amount, tr["amount"], fee["amount"]))
    return sb.render(trr)


@route("GET", "/v1/transfers/{tr_id}/reversals", "TransferListReversalsParams")
def list_reversals(ctx: Ctx, p: Obj, tr_id: str) -> Obj:
    sb = ctx.sb
    sb.get(ctx, tr_id, "transfer")
    items = [r for r in sb.objects_of("transfer_reversal") if r["transfer"] == tr_id]
    return sb.paginate(ctx, items, p, f"/v1/transfers/{tr_id}/reversals")


def _get_reversal(ctx: Ctx, tr_id: str, trr_id: str) -> Obj:
    ctx.sb.get(ctx, tr_id, "transfer")
    trr = ctx.sb.find(trr_id, "transfer_reversal")
    if trr is None or trr["transfer"] != tr_id:
        raise no_such("transfer_reversal", trr_id)
    return trr


@route("GET", "/v1/transfers/{tr_id}/reversals/{trr_id}", "TransferRetrieveReversalParams")
def retrieve_reversal(ctx: Ctx, p: Obj, tr_id: str, trr_id: str) -> Obj:
    return ctx.sb.render(_get_reversal(ctx, tr_id, trr_id))


@route("POST", "/v1/transfers/{tr_id}/reversals/{trr_id}", "TransferModifyReversalParams")
def update_reversal(ctx: Ctx, p: Obj, tr_id: str, trr_id: str) -> Obj:
    trr = _get_reversal(ctx, tr_id, trr_id)
    apply_metadata(trr, p.get("metadata"))
    return ctx.sb.render(trr)


# ---------------------------------------------------------------- application fees
def create_application_fee(
    ctx: Ctx, charge: Obj, fee_amount: int, account: str, py: str | None
) -> Obj:
    sb = ctx.sb
    fee = sb.new_object(
        "application_fee",
        "fee",
        None,
        account=account,
        amount=fee_amount,
        amount_refunded=0,
        application="ca_sandbox",
        charge=py or charge["id"],
        currency=charge["currency"],
        fee_source={"charge": py or charge["id"], "type": "charge"},
        originating_transaction=charge["id"] if py else None,
        refunded=False,
    )
    avail = sb.objects[charge["balance_transaction"]]["available_on"]
    bt = add_bt(
        sb, None, fee_amount, charge["currency"], "application_fee", fee["id"], available_on=avail
    )
    fee["balance_transaction"] = bt["id"]
    sb.emit(ctx, "application_fee.created", fee, owner=None)
    return fee


@render_hook("application_fee")
def _render_fee(sb: Sandbox, obj: Obj, out: Obj) -> None:
    refunds = [r for r in sb.objects_of("fee_refund") if r["fee"] == obj["id"]]
    out["refunds"] = list_of(sb, refunds, f"/v1/application_fees/{obj['id']}/refunds")


def refund_fee_internal(ctx: Ctx, fee: Obj, amount: int, metadata: Any = None) -> Obj:
    sb = ctx.sb
    remaining = fee["amount"] - fee["amount_refunded"]
    if amount > remaining:
        raise invalid(
            f"Refund amount ({amount}) is greater than the unrefunded amount of application fee "
            f"{fee['id']} ({remaining}).",
            param="amount",
        )
    fr = sb.new_object(
        "fee_refund", "fr", None, amount=amount, currency=fee["currency"], fee=fee["id"]
    )
    apply_metadata(fr, metadata)
    bt = add_bt(sb, None, -amount, fee["currency"], "application_fee_refund", fr["id"])
    fr["balance_transaction"] = bt["id"]
    add_bt(sb, fee["account"], amount, fee["currency"], "application_fee_refund", fr["id"])
    prev = {"amount_refunded": fee["amount_refunded"], "refunded": fee["refunded"]}
    fee["amount_refunded"] += amount
    fee["refunded"] = fee["amount_refunded"] >= fee["amount"]
    sb.emit(ctx, "application_fee.refunded", fee, prev, owner=None)
    return fr


@route("GET", "/v1/application_fees", "ApplicationFeeListParams")
def list_fees(ctx: Ctx, p: Obj) -> Obj:
    items = ctx.sb.objects_of("application_fee", ctx.account)
    if "charge" in p:
        items = [f for f in items if p["charge"] in (f["charge"], f.get("originating_transaction"))]
    items = created_filter(items, p.get("created"))
    return ctx.sb.paginate(ctx, items, p, "/v1/application_fees")


@route("GET", "/v1/application_fees/{fee_id}", "ApplicationFeeRetrieveParams")
def retrieve_fee(ctx: Ctx, p: Obj, fee_id: str) -> Obj:
    return ctx.sb.render(ctx.sb.get(ctx, fee_id, "application_fee"))


@route("POST", "/v1/application_fees/{fee_id}/refunds", "ApplicationFeeCreateRefundParams")
def create_fee_refund(ctx: Ctx, p: Obj, fee_id: str) -> Obj:
    fee = ctx.sb.get(ctx, fee_id, "application_fee")
    amount = p.get("amount", fee["amount"] - fee["amount_refunded"])
    if amount <= 0:
        raise invalid(f"Application fee {fee_id} has already been refunded.", param="amount")
    return ctx.sb.render(refund_fee_internal(ctx, fee, amount, p.get("metadata")))


@route("GET", "/v1/application_fees/{fee_id}/refunds", "ApplicationFeeListRefundsParams")
def list_fee_refunds(ctx: Ctx, p: Obj, fee_id: str) -> Obj:
    ctx.sb.get(ctx, fee_id, "application_fee")
    items = [r for r in ctx.sb.objects_of("fee_refund") if r["fee"] == fee_id]
    return ctx.sb.paginate(ctx, items, p, f"/v1/application_fees/{fee_id}/refunds")


def _get_fee_refund(ctx: Ctx, fee_id: str, fr_id: str) -> Obj:
    ctx.sb.get(ctx, fee_id, "application_fee")
    fr = ctx.sb.find(fr_id, "fee_refund")
    if fr is None or fr["fee"] != fee_id:
        raise no_such("fee_refund", fr_id)
    return fr


@route("GET", "/v1/application_fees/{fee_id}/refunds/{fr_id}", "ApplicationFeeRetrieveRefundParams")
def retrieve_fee_refund(ctx: Ctx, p: Obj, fee_id: str, fr_id: str) -> Obj:
    return ctx.sb.render(_get_fee_refund(ctx, fee_id, fr_id))


@route("POST", "/v1/application_fees/{fee_id}/refunds/{fr_id}", "ApplicationFeeModifyRefundParams")
def update_fee_refund(ctx: Ctx, p: Obj, fee_id: str, fr_id: str) -> Obj:
    fr = _get_fee_refund(ctx, fee_id, fr_id)
    apply_metadata(fr, p.get("metadata"))
    return ctx.sb.render(fr)


# ---------------------------------------------------------------- refunds
@route("POST", "/v1/refunds", "RefundCreateParams")
def create_refund(ctx: Ctx, p: Obj) -> Obj:
    sb = ctx.sb
    if p.get("charge"):
        ch = sb.get(ctx, p["charge"], "charge", param="charge")
    elif p.get("payment_intent"):
        pi = sb.get(ctx, p["payment_intent"], "payment_intent", param="payment_intent")
        if pi["status"] == "requires_capture":
            raise invalid(
                "This PaymentIntent is in the requires_capture state. Cancel the "
                "PaymentIntent to release the uncaptured funds instead.",
                param="payment_intent",
                code="charge_not_refundable",
            )
        if not pi.get("latest_charge") or pi["status"] != "succeeded":
            raise invalid(
                f"This PaymentIntent ({pi['id']}) does not have a successful charge to refund.",
                param="payment_intent",
                code="charge_not_refundable",
            )
        ch = sb.objects[pi["latest_charge"]]
    else:
        raise invalid(
            "One of the following params should be provided for this request: "
            "payment_intent or charge.",
            param="charge",
        )
    if ch["status"] != "succeeded":
        raise invalid(
            f"Charge {ch['id']} has not succeeded.", param="charge", code="charge_not_refundable"
        )
    if not ch["captured"]:
        raise invalid(
            f"Charge {ch['id']} has not been captured; cancel its PaymentIntent to release it.",
            param="charge",
            code="charge_not_refundable",
        )
    if ch.get("disputed"):
        dp = sb.find(ch.get("_dispute"), "dispute")
        if dp is None or not (dp["status"] == "won" or dp["status"].startswith("warning_")):
            raise invalid(
                f"Charge {ch['id']} has been charged back; cannot issue a refund.",
                param="charge",
                code="charge_disputed",
            )
    remaining = ch["amount_captured"] - ch["amount_refunded"] + ch.get("_released", 0)
    if remaining <= 0:
        raise invalid(
            f"Charge {ch['id']} has already been refunded.",
            param="charge",
            code="charge_already_refunded",
        )
    amount = p.get("amount", remaining)
    if amount < 1:
        raise invalid("Refund amount must be at least 1.", param="amount")
    if amount > remaining:
        raise invalid(
            f"Refund amount ({_fmt(amount, ch['currency'])}) is greater than unrefunded amount "
            f"on charge ({_fmt(remaining, ch['currency'])})",
            param="amount",
            code="amount_too_large",
        )
    if p.get("reverse_transfer") and not ch.get("transfer"):
        raise invalid(
            "You can only use reverse_transfer with a charge that has a transfer (destination "
            "charge).",
            param="reverse_transfer",
        )
    if p.get("refund_application_fee") and not ch.get("application_fee"):
        raise invalid(
            "You can only use refund_application_fee with a charge that has an application fee.",
            param="refund_application_fee",
        )
    re_ = sb.new_object(
        "refund",
        "re",
        ctx.account,
        amount=amount,
        charge=ch["id"],
        currency=ch["currency"],
        customer=ch.get("customer"),
        customer_account=None,
        destination_details={
            "card": {
                "reference": None,
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        payment_intent=ch.get("payment_intent"),
        payment_method=ch.get("payment_method"),
        reason=p.get("reason"),
        receipt_number=None,
        source_transfer_reversal=None,
        status="succeeded",
        transfer_reversal=None,
        instructions_email=p.get("instructions_email"),
        description=None,
    )
    apply_metadata(re_, p.get("metadata"))
    bt = add_bt(sb, ctx.account, -amount, ch["currency"], "refund", re_["id"])
    re_["balance_transaction"] = bt["id"]
    prev = {"amount_refunded": ch["amount_refunded"], "refunded": ch["refunded"]}
    ch["amount_refunded"] += amount
    ch["refunded"] = ch["amount_refunded"] >= ch["amount"]
    if not ch["refunded"]:
        prev.pop("refunded")
    if p.get("reverse_transfer"):
        tr = sb.objects[ch["transfer"]]
        rev_amount = min(
            prorate(amount, ch["amount_captured"], tr["amount"]),
            tr["amount"] - tr["amount_reversed"],
        )
        if rev_amount > 0:
            trr = reverse_transfer_internal(ctx, tr, rev_amount, source_refund=re_["id"])
            re_["transfer_reversal"] = trr["id"]
    if p.get("refund_application_fee"):
        fee = sb.objects[ch["application_fee"]]
        fee_amount = min(
            prorate(amount, ch["amount_captured"], fee["amount"]),
            fee["amount"] - fee["amount_refunded"],
        )
        if fee_amount > 0:
            refund_fee_internal(ctx, fee, fee_amount)
    sb.emit(ctx, "refund.created", re_)
    sb.emit(ctx, "charge.refunded", ch, prev)
    pm = sb.objects.get(ch.get("_pm") or "")
    if pm is not None and pm.get("_card") == "refundFail":
        sb.schedule(sb.now() + REFUND_FAILURE_DELAY, "refund_fail", refund_id=re_["id"])
    return sb.render(re_)


REFUND_FAILURE_DELAY = 60  # seconds of sandbox time before a refundFail card's refund fails


@task("refund_fail")
def _refund_fail(sb: Sandbox, refund_id: str) -> None:
    """The refund to a ``pm_card_refundFail`` card bounces: money comes back to the balance."""
    re_ = sb.objects.get(refund_id)
    if re_ is None or re_["status"] != "succeeded":
        return
    ch = sb.objects[re_["charge"]]
    bt = add_bt(sb, re_["_owner"], re_["amount"], re_["currency"], "refund_failure", re_["id"])
    prev = {"status": "succeeded"}
    re_["status"] = "failed"
    re_["failure_reason"] = "expired_or_canceled_card"
    re_["failure_balance_transaction"] = bt["id"]
    ch["amount_refunded"] -= re_["amount"]
    ch["refunded"] = ch["amount_refunded"] >= ch["amount"]
    sb.emit(None, "refund.updated", re_, prev)
    sb.emit(None, "refund.failed", re_)
    sb.emit(None, "charge.refund.updated", re_, prev)


def _fmt(amount: int, currency: str) -> str:
    from stripe_sandbox.core import ZERO_DECIMAL

    if currency in ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    return f"${amount / 100:.2f}"


@route("GET", "/v1/refunds/{re_id}", "RefundRetrieveParams")
def retrieve_refund(ctx: Ctx, p: Obj, re_id: str) -> Obj:
    return ctx.sb.render(ctx.sb.get(ctx, re_id, "refund"))


@route("POST", "/v1/refunds/{re_id}", "RefundUpdateParams")
def update_refund(ctx: Ctx, p: Obj, re_id: str) -> Obj:
    re_ = ctx.sb.get(ctx, re_id, "refund")
    prev: Obj = {}
    apply_metadata(re_, p.get("metadata"), prev)
    if prev:
        ctx.sb.emit(ctx, "refund.updated", re_, prev)
    return ctx.sb.render(re_)


@route("POST", "/v1/refunds/{re_id}/cancel", "RefundCancelParams")
def cancel_refund(ctx: Ctx, p: Obj, re_id: str) -> Obj:
    re_ = ctx.sb.get(ctx, re_id, "refund")
    raise invalid(
        f"Refund {re_['id']} cannot be canceled because it has a status of {re_['status']}. "
        "Only refunds with status requires_action can be canceled.",
        code="refund_unexpected_state",
    )


@route("GET", "/v1/refunds", "RefundListParams")
def list_refunds(ctx: Ctx, p: Obj) -> Obj:
    items = ctx.sb.objects_of("refund", ctx.account)
    if "charge" in p:
        items = [r for r in items if r["charge"] == p["charge"]]
    if "payment_intent" in p:
        items = [r for r in items if r.get("payment_intent") == p["payment_intent"]]
    items = created_filter(items, p.get("created"))
    return ctx.sb.paginate(ctx, items, p, "/v1/refunds")


@route("GET", "/v1/charges/{ch_id}/refunds", "ChargeListRefundsParams")
def list_charge_refunds(ctx: Ctx, p: Obj, ch_id: str) -> Obj:
    ctx.sb.get(ctx, ch_id, "charge")
    items = [r for r in ctx.sb.objects_of("refund", ctx.account) if r["charge"] == ch_id]
    return ctx.sb.paginate(ctx, items, p, f"/v1/charges/{ch_id}/refunds")


# ---------------------------------------------------------------- payouts
@route("POST", "/v1/payouts", "PayoutCreateParams")
def create_payout(ctx: Ctx, p: Obj) -> Obj:
    sb = ctx.sb
    currency = p["currency"].lower()
    amount = p["amount"]
    if amount < 1:
        raise invalid("This value must be greater than or equal to 1.", param="amount")
    if ctx.account is not None:
        acct = sb.objects[ctx.account]
        if not acct.get("payouts_enabled"):
            raise invalid(
                "Your account cannot currently make payouts. Please complete onboarding "
                "(requirements are currently due).",
                code="payouts_not_allowed",
            )
    if p.get("method") == "instant":
        raise invalid(
            "Instant payouts are not supported for this destination.",
            param="method",
            code="instant_payouts_unsupported",
        )
    if available_amount(sb, ctx.account, currency) < amount:
        raise StripeError(
            400,
            "You have insufficient funds in your Stripe account for this transfer. Your card "
            "balance is too low. You can use the /v1/balance endpoint to view your Stripe "
            "balance (for more details, see stripe.com/docs/api#balance).",
            code="balance_insufficient",
        )
    destination = p.get("destination") or default_bank(sb, ctx.account) or "ba_sandbox_default"
    po = sb.new_object(
        "payout",
        "po",
        ctx.account,
        amount=amount,
        arrival_date=sb.now() + sb.payout_arrival_days * 86400,
        currency=currency,
        description=p.get("description"),
        destination=destination,
        statement_descriptor=p.get("statement_descriptor"),
        status="pending",
        application_fee=None,
        application_fee_amount=None,
        failure_balance_transaction=None,
        failure_code=None,
        failure_message=None,
        original_payout=None,
        payout_method=None,
        reversed_by=None,
        trace_id={"status": "pending", "value": None},
    )
    apply_metadata(po, p.get("metadata"))
    bt = add_bt(sb, ctx.account, -amount, currency, "payout", po["id"], description="STRIPE PAYOUT")
    bt["_payout"] = po["id"]
    po["balance_transaction"] = bt["id"]
    po["_fail"] = payout_failure_code(sb, ctx.account)
    sb.emit(ctx, "payout.created", po)
    sb.schedule(
        sb.now() + min(sb.payout_in_transit_seconds, po["arrival_date"] - sb.now()),
        "payout_in_transit",
        payout_id=po["id"],
    )
    sb.schedule(po["arrival_date"], "payout_arrive", payout_id=po["id"])
    return sb.render(po)


def _po_transition(sb: Sandbox, po: Obj, status: str, event: str | None) -> None:
    prev = {"status": po["status"]}
    po["status"] = status
    sb.emit(None, "payout.updated", po, prev)
    if event:
        sb.emit(None, event, po)


@task("payout_in_transit")
def _payout_in_transit(sb: Sandbox, payout_id: str) -> None:
    po = sb.objects.get(payout_id)
    if po is not None and po["status"] == "pending":
        _po_transition(sb, po, "in_transit", None)


def fail_payout(sb: Sandbox, payout_id: str, failure_code: str = "account_closed") -> Obj:
    po = sb.find(payout_id, "payout")
    if po is None:
        raise SandboxError(f"no such payout: {payout_id}")
    if po["status"] not in ("pending", "in_transit", "paid"):
        raise SandboxError(f"payout {payout_id} is {po['status']}")
    prev = {"status": po["status"]}
    bt = add_bt(
        sb,
        po["_owner"],
        po["amount"],
        po["currency"],
        "payout_failure",
        po["id"],
        description="STRIPE PAYOUT FAILURE",
    )
    bt["_payout"] = po["id"]
    po.update(
        status="failed",
        failure_code=failure_code,
        failure_message=FAILURE_MESSAGES.get(failure_code, "The payout failed."),
        failure_balance_transaction=bt["id"],
    )
    sb.emit(None, "payout.updated", po, prev)
    sb.emit(None, "payout.failed", po)
    return sb.render(po)


@task("payout_arrive")
def _payout_arrive(sb: Sandbox, payout_id: str) -> None:
    po = sb.objects.get(payout_id)
    if po is None or po["status"] not in ("pending", "in_transit"):
        return
    if po.get("_fail"):
        fail_payout(sb, payout_id, po["_fail"])
        return
    po["trace_id"] = {"status": "supported", "value": sb.ids.token(12).upper()}
    _po_transition(sb, po, "paid", "payout.paid")


@route("GET", "/v1/payouts/{po_id}", "PayoutRetrieveParams")
def retrieve_payout(ctx: Ctx, p: Obj, po_id: str) -> Obj:
    return ctx.sb.render(ctx.sb.get(ctx, po_id, "payout"))


@route("POST", "/v1/payouts/{po_id}", "PayoutUpdateParams")
def update_payout(ctx: Ctx, p: Obj, po_id: str) -> Obj:
    po = ctx.sb.get(ctx, po_id, "payout")
    prev: Obj = {}
    apply_metadata(po, p.get("metadata"), prev)
    if prev:
        ctx.sb.emit(ctx, "payout.updated", po, prev)
    return ctx.sb.render(po)


@route("POST", "/v1/payouts/{po_id}/cancel", "PayoutCancelParams")
def cancel_payout(ctx: Ctx, p: Obj, po_id: str) -> Obj:
    sb = ctx.sb
    po = sb.get(ctx, po_id, "payout")
    if po["status"] != "pending":
        raise invalid(
            f"Payouts can only be canceled while they are pending; this payout is {po['status']}.",
            code="payout_not_cancelable" if False else None,
        )
    prev = {"status": po["status"]}
    bt = add_bt(sb, po["_owner"], po["amount"], po["currency"], "payout_cancel", po["id"])
    bt["_payout"] = po["id"]
    po["status"] = "canceled"
    po["failure_balance_transaction"] = bt["id"]
    sb.emit(ctx, "payout.updated", po, prev)
    sb.emit(ctx, "payout.canceled", po)
    return sb.render(po)


@route("GET", "/v1/payouts", "PayoutListParams")
def list_payouts(ctx: Ctx, p: Obj) -> Obj:
    items = ctx.sb.objects_of("payout", ctx.account)
    if "status" in p:
        items = [x for x in items if x["status"] == p["status"]]
    if "destination" in p:
        items = [x for x in items if x["destination"] == p["destination"]]
    items = created_filter(items, p.get("created"))
    items = created_filter(items, p.get("arrival_date"), "arrival_date")
    return ctx.sb.paginate(ctx, items, p, "/v1/payouts")


# ---------------------------------------------------------------- disputes
def _dispute_fee(sb: Sandbox, currency: str) -> int:
    from stripe_sandbox.core import ZERO_DECIMAL

    return (sb.dispute_fee + 50) // 100 if currency in ZERO_DECIMAL else sb.dispute_fee


def open_dispute(
    sb: Sandbox,
    charge_id: str,
    reason: str = "fraudulent",
    amount: int | None = None,
    ctx: Ctx | None = None,
    inquiry: bool = False,
) -> Obj:
    """Open a chargeback (funds and dispute fee withdrawn) or an inquiry (nothing moves)."""
    ch = sb.find(charge_id, "charge")
    if ch is None:
        raise SandboxError(f"no such charge: {charge_id}")
    if ch.get("disputed"):
        raise SandboxError(f"charge {charge_id} is already disputed")
    if not ch.get("captured"):
        raise SandboxError(f"charge {charge_id} is not captured")
    amount = ch["amount_captured"] if amount is None else amount
    dp = sb.new_object(
        "dispute",
        "du",
        ch["_owner"],
        amount=amount,
        charge=ch["id"],
        currency=ch["currency"],
        evidence=_empty_evidence(),
        evidence_details={
            "due_by": sb.now() + 7 * 86400,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        is_charge_refundable=inquiry,
        payment_intent=ch.get("payment_intent"),
        payment_method_details={
            "card": {
                "brand": (ch.get("payment_method_details") or {}).get("card", {}).get("brand"),
                "case_type": "inquiry" if inquiry else "chargeback",
                "network_reason_code": "10.4",
            },
            "type": "card",
        },
        reason=reason,
        status="warning_needs_response" if inquiry else "needs_response",
    )
    dp["_bts"] = []
    ch["disputed"] = True
    ch["_dispute"] = dp["id"]
    if inquiry:
        sb.emit(ctx, "charge.dispute.created", dp)
        return sb.render(dp)
    _withdraw(sb, dp, ch)
    sb.emit(ctx, "charge.dispute.created", dp)
    sb.emit(ctx, "charge.dispute.funds_withdrawn", dp)
    return sb.render(dp)


def _withdraw(sb: Sandbox, dp: Obj, ch: Obj) -> None:
    amount = dp["amount"]
    fee = _dispute_fee(sb, ch["currency"])
    bt = add_bt(
        sb,
        ch["_owner"],
        -amount,
        ch["currency"],
        "adjustment",
        dp["id"],
        fee=fee,
        fee_details=[
            {
                "amount": fee,
                "application": None,
                "currency": ch["currency"],
                "description": "Dispute fee",
                "type": "stripe_fee",
            }
        ],
        description=f"Chargeback withdrawal for {ch['id']}",
    )
    dp["_bts"].append(bt["id"])


def _empty_evidence() -> Obj:
    keys = (
        "access_activity_log",
        "billing_address",
        "cancellation_policy",
        "cancellation_policy_disclosure",
        "cancellation_rebuttal",
        "customer_communication",
        "customer_email_address",
        "customer_name",
        "customer_purchase_ip",
        "customer_signature",
        "duplicate_charge_documentation",
        "duplicate_charge_explanation",
        "duplicate_charge_id",
        "product_description",
        "receipt",
        "refund_policy",
        "refund_policy_disclosure",
        "refund_refusal_explanation",
        "service_date",
        "service_documentation",
        "shipping_address",
        "shipping_carrier",
        "shipping_date",
        "shipping_documentation",
        "shipping_tracking_number",
        "uncategorized_file",
        "uncategorized_text",
    )
    ev: Obj = dict.fromkeys(keys)
    ev["enhanced_evidence"] = {}
    return ev


@render_hook("dispute")
def _render_dispute(sb: Sandbox, obj: Obj, out: Obj) -> None:
    out["balance_transactions"] = [sb.render(sb.objects[b]) for b in obj.get("_bts", [])]


def close_dispute(
    sb: Sandbox, dispute_id: str, outcome: str = "lost", ctx: Ctx | None = None
) -> Obj:
    dp = sb.find(dispute_id, "dispute")
    if dp is None:
        raise SandboxError(f"no such dispute: {dispute_id}")
    if dp["status"] in ("won", "lost", "warning_closed"):
        raise SandboxError(f"dispute {dispute_id} is already {dp['status']}")
    if outcome not in ("won", "lost"):
        raise SandboxError("outcome must be 'won' or 'lost'")
    prev = {"status": dp["status"]}
    if dp["status"].startswith("warning_"):
        # an inquiry: "won" closes it; "lost" escalates to a chargeback that is lost
        if outcome == "won":
            dp["status"] = "warning_closed"
            sb.emit(ctx, "charge.dispute.closed", dp, prev)
            return sb.render(dp)
        dp["status"] = "lost"
        dp["is_charge_refundable"] = False
        dp["payment_method_details"]["card"]["case_type"] = "chargeback"
        _withdraw(sb, dp, sb.objects[dp["charge"]])
        sb.emit(ctx, "charge.dispute.funds_withdrawn", dp)
        sb.emit(ctx, "charge.dispute.closed", dp, prev)
        return sb.render(dp)
    dp["status"] = outcome
    if outcome == "won":
        fee = _dispute_fee(sb, dp["currency"])
        bt = add_bt(
            sb,
            dp["_owner"],
            dp["amount"],
            dp["currency"],
            "adjustment",
            dp["id"],
            fee=-fee,
            fee_details=[
                {
                    "amount": -fee,
                    "application": None,
                    "currency": dp["currency"],
                    "description": "Dispute fee refund",
                    "type": "stripe_fee",
                }
            ],
            description=f"Chargeback reversal for {dp['charge']}",
            reporting_category="dispute_reversal",
        )
        dp["_bts"].append(bt["id"])
        sb.emit(ctx, "charge.dispute.funds_reinstated", dp)
    sb.emit(ctx, "charge.dispute.closed", dp, prev)
    return sb.render(dp)


@route("GET", "/v1/disputes/{dp_id}", "DisputeRetrieveParams")
def retrieve_dispute(ctx: Ctx, p: Obj, dp_id: str) -> Obj:
    return ctx.sb.render(ctx.sb.get(ctx, dp_id, "dispute"))


@route("POST", "/v1/disputes/{dp_id}", "DisputeUpdateParams")
def update_dispute(ctx: Ctx, p: Obj, dp_id: str) -> Obj:
    sb = ctx.sb
    dp = sb.get(ctx, dp_id, "dispute")
    if dp["status"] in ("won", "lost", "warning_closed"):
        raise invalid(
            f"This dispute is already closed (status: {dp['status']}).",
            code="dispute_closed" if False else None,
        )
    prev: Obj = {}
    if "evidence" in p:
        prev["evidence"] = dict(dp["evidence"])
        for k, v in p["evidence"].items():
            dp["evidence"][k] = v or None
        dp["evidence_details"]["has_evidence"] = True
    apply_metadata(dp, p.get("metadata"), prev)
    if p.get("submit", True) and "evidence" in p:
        prev["status"] = dp["status"]
        prev["evidence_details"] = dict(dp["evidence_details"])
        # an inquiry's evidence puts it under review as an inquiry still (Stripe's statuses)
        is_inquiry = dp["status"].startswith("warning_")
        dp["status"] = "warning_under_review" if is_inquiry else "under_review"
        dp["evidence_details"]["submission_count"] += 1
    if prev:
        sb.emit(ctx, "charge.dispute.updated", dp, prev)
    return sb.render(dp)


@route("POST", "/v1/disputes/{dp_id}/close", "DisputeCloseParams")
def accept_dispute(ctx: Ctx, p: Obj, dp_id: str) -> Obj:
    dp = ctx.sb.get(ctx, dp_id, "dispute")
    if dp["status"] in ("won", "lost", "warning_closed"):
        raise invalid(f"This dispute is already closed (status: {dp['status']}).")
    if dp["status"].startswith("warning_"):
        prev = {"status": dp["status"]}
        dp["status"] = "warning_closed"
        ctx.sb.emit(ctx, "charge.dispute.closed", dp, prev)
        return ctx.sb.render(dp)
    return close_dispute(ctx.sb, dp_id, "lost", ctx)


@route("GET", "/v1/disputes", "DisputeListParams")
def list_disputes(ctx: Ctx, p: Obj) -> Obj:
    items = ctx.sb.objects_of("dispute", ctx.account)
    if "charge" in p:
        items = [d for d in items if d["charge"] == p["charge"]]
    if "payment_intent" in p:
        items = [d for d in items if d.get("payment_intent") == p["payment_intent"]]
    items = created_filter(items, p.get("created"))
    return ctx.sb.paginate(ctx, items, p, "/v1/disputes")
