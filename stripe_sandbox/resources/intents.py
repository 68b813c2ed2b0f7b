"""SetupIntents, PaymentIntents and the charges they create."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from stripe_sandbox.errors import SandboxError, StripeError, invalid
from stripe_sandbox.resources import render_hook, task
from stripe_sandbox.resources.accounts import connected
from stripe_sandbox.resources.common import apply_metadata, created_filter, list_of, update_fields
from stripe_sandbox.resources.customers import (
    DECLINES,
    card_of,
    check_usable,
    decline_error,
    resolve_pm,
)
from stripe_sandbox.resources.money import (
    add_bt,
    check_transfer_destination,
    create_application_fee,
    create_transfer_internal,
    open_dispute,
)
from stripe_sandbox.router import route

if TYPE_CHECKING:
    from stripe_sandbox.core import Ctx, Sandbox

Obj = dict[str, Any]

MINIMUM_AMOUNTS = {
    "usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50, "chf": 50, "jpy": 50,
    "nzd": 50, "sgd": 50, "hkd": 400, "dkk": 250, "nok": 300, "sek": 300, "mxn": 1000,
    "pln": 200, "czk": 1500, "huf": 17500, "brl": 50, "inr": 50, "krw": 500,
}  # fmt: skip

PI_CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)


def _unexpected(kind: str, obj: Obj, action: str, allowed: tuple[str, ...]) -> StripeError:
    label = "PaymentIntent" if kind == "payment_intent" else "SetupIntent"
    return StripeError(
        400,
        f"You cannot {action} this {label} because it has a status of {obj['status']}. "
        f"Only a {label} with one of the following statuses may be {action}ed: "
        + ", ".join(allowed)
        + ".",
        code=f"{kind}_unexpected_state",
        extra={kind: None},
    )


def _next_action(sb: Sandbox, intent: Obj, return_url: str | None) -> Obj:
    url = f"{sb.base_url}/_sandbox/3ds/{intent['id']}"
    if return_url:
        return {
            "type": "redirect_to_url",
            "redirect_to_url": {"return_url": return_url, "url": url},
        }
    return {
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {
            "type": "three_d_secure_redirect",
            "stripe_js": url,
            "source": "src_" + sb.ids.token(24),
        },
    }


def _pm_details(pm: Obj, auth: bool) -> Obj:
    c = pm["card"]
    return {
        "card": {
            "amount_authorized": None,
            "brand": c["brand"],
            "checks": dict(c["checks"]),
            "country": c["country"],
            "exp_month": c["exp_month"],
            "exp_year": c["exp_year"],
            "fingerprint": c["fingerprint"],
            "funding": c["funding"],
            "last4": c["last4"],
            "network": c["brand"],
            "three_d_secure": {"authentication_flow": "challenge", "result": "authenticated"}
            if auth
            else None,
            "wallet": None,
        },
        "type": "card",
    }


def _check_customer_pm(sb: Sandbox, pm: Obj, customer: str | None) -> None:
    check_usable(pm)
    if pm.get("customer") and customer and pm["customer"] != customer:
        raise invalid(
            "The provided PaymentMethod belongs to a different Customer than the one given.",
            param="payment_method",
        )
    if pm.get("customer") and not customer:
        raise invalid(
            "The provided PaymentMethod was previously attached to a Customer. To use a "
            "PaymentMethod that is attached to a Customer, you must also provide the "
            "customer ID.",
            param="payment_method",
        )


# ======================================================================= charges
def _new_charge(ctx: Ctx, pi: Obj, pm: Obj, status: str, captured: bool) -> Obj:
    sb = ctx.sb
    ch = sb.new_object(
        "charge",
        "ch",
        pi["_owner"],
        amount=pi["amount"],
        amount_captured=0,
        amount_refunded=0,
        application=None,
        application_fee=None,
        application_fee_amount=pi.get("application_fee_amount"),
        balance_transaction=None,
        billing_details=dict(pm["billing_details"]),
        calculated_statement_descriptor="SANDBOX",
        captured=captured,
        currency=pi["currency"],
        customer=pi.get("customer"),
        description=pi.get("description"),
        disputed=False,
        failure_balance_transaction=None,
        failure_code=None,
        failure_message=None,
        fraud_details={},
        metadata=dict(pi.get("metadata") or {}),
        on_behalf_of=pi.get("on_behalf_of"),
        outcome={
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 20,
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        paid=status == "succeeded",
        payment_intent=pi["id"],
        payment_method=pm["id"],
        payment_method_details=_pm_details(pm, bool(pi.get("_auth_done"))),
        receipt_email=pi.get("receipt_email"),
        receipt_number=None,
        receipt_url=f"https://pay.stripe.com/receipts/sandbox/{sb.ids.token(20)}",
        refunded=False,
        review=None,
        shipping=pi.get("shipping"),
        source=None,
        source_transfer=None,
        statement_descriptor=pi.get("statement_descriptor"),
        statement_descriptor_suffix=pi.get("statement_descriptor_suffix"),
        status=status,
        transfer_data=pi.get("transfer_data"),
        transfer_group=pi.get("transfer_group"),
        transfer=None,
    )
    ch["_pm"] = pm["id"]
    pi["latest_charge"] = ch["id"]
    return ch


@render_hook("charge")
def _render_charge(sb: Sandbox, obj: Obj, out: Obj) -> None:
    refunds = [r for r in sb.objects_of("refund") if r.get("charge") == obj["id"]]
    out["refunds"] = list_of(sb, refunds, f"/v1/charges/{obj['id']}/refunds")


def _settle(ctx: Ctx, pi: Obj, ch: Obj, amount: int) -> None:
    """Capture ``amount`` of ``ch``: balance transaction, destination transfer, app fee."""
    sb = ctx.sb
    pm = sb.objects.get(ch["_pm"])
    bypass = pm is not None and card_of(pm).bypass_pending
    available_on = sb.now() if bypass else sb.now() + sb.available_delay_days * 86400
    owner = ch["_owner"]
    stripe_fee = sb.card_fee(amount, ch["currency"])
    app_fee = pi.get("application_fee_amount") or 0
    fee_details = [
        {
            "amount": stripe_fee,
            "application": None,
            "currency": ch["currency"],
            "description": "Stripe processing fees",
            "type": "stripe_fee",
        }
    ]
    total_fee = stripe_fee
    direct_fee = owner is not None and app_fee > 0
    if direct_fee:
        fee_details.append(
            {
                "amount": app_fee,
                "application": "ca_sandbox",
                "currency": ch["currency"],
                "description": "Application fee",
                "type": "application_fee",
            }
        )
        total_fee += app_fee
    bt = add_bt(
        sb,
        owner,
        amount,
        ch["currency"],
        "charge",
        ch["id"],
        fee=total_fee,
        fee_details=fee_details,
        available_on=available_on,
        description=ch.get("description"),
    )
    ch["balance_transaction"] = bt["id"]
    ch["amount_captured"] = amount
    ch["captured"] = True
    if direct_fee:
        fee = create_application_fee(ctx, ch, app_fee, owner or "", None)
        fee["charge"] = ch["id"]
        fee["fee_source"] = {"charge": ch["id"], "type": "charge"}
        ch["application_fee"] = fee["id"]
    td = pi.get("transfer_data") or {}
    if td.get("destination") and owner is None:
        dest = sb.find(td["destination"], "account")
        if dest is None:
            raise SandboxError("destination account vanished")
        tr_amount = min(td.get("amount", amount), amount)
        tr = create_transfer_internal(
            ctx,
            tr_amount,
            ch["currency"],
            dest,
            ch,
            pi.get("transfer_group") or f"group_{pi['id']}",
            app_fee=app_fee,
        )
        ch["transfer"] = tr["id"]
        if not pi.get("transfer_group"):
            pi["transfer_group"] = tr["transfer_group"]
            ch["transfer_group"] = tr["transfer_group"]
        if app_fee:
            fee = create_application_fee(ctx, ch, app_fee, dest["id"], tr["destination_payment"])
            ch["application_fee"] = fee["id"]
            py = sb.objects[tr["destination_payment"]]
            py["application_fee"] = fee["id"]
            py["application_fee_amount"] = app_fee


# ======================================================================= payment intents
def _validate_pi_money(ctx: Ctx, p: Obj, amount: int, currency: str) -> None:
    sb = ctx.sb
    minimum = MINIMUM_AMOUNTS.get(currency, 50)
    if amount < minimum:
        raise invalid(
            f"Amount must be at least {minimum} {currency} (minor units)"
            if currency != "usd"
            else "Amount must be at least $0.50 usd",
            param="amount",
            code="amount_too_small",
        )
    if amount > 99999999:
        raise invalid(
            "Amount must be no more than $999,999.99", param="amount", code="amount_too_large"
        )
    fee = p.get("application_fee_amount")
    td = p.get("transfer_data") or {}
    if fee is not None:
        if ctx.account is None and not td.get("destination"):
            raise invalid(
                "Can only apply an application_fee_amount when the PaymentIntent is attempting "
                "a direct payment (using an OAuth key or Stripe-Account header) or destination "
                "payment (using `transfer_data[destination]`).",
                param="application_fee_amount",
            )
        if fee > amount:
            raise invalid(
                "The application fee amount must be less than or equal to the amount.",
                param="application_fee_amount",
            )
        if fee < 0:
            raise invalid("Invalid application_fee_amount", param="application_fee_amount")
    if td:
        if ctx.account is not None:
            raise invalid(
                "transfer_data cannot be used on a direct charge (Stripe-Account header).",
                param="transfer_data",
            )
        check_transfer_destination(sb, td["destination"], "transfer_data[destination]")
        if "amount" in td:
            if fee is not None:
                raise invalid(
                    "You cannot specify both `application_fee_amount` and `transfer_data[amount]`.",
                    param="transfer_data[amount]",
                )
            if td["amount"] > amount:
                raise invalid(
                    "transfer_data[amount] must be less than or equal to the amount.",
                    param="transfer_data[amount]",
                )
    if p.get("on_behalf_of"):
        connected(sb, p["on_behalf_of"], "on_behalf_of")


@route("POST", "/v1/payment_intents", "PaymentIntentCreateParams")
def create_pi(ctx: Ctx, p: Obj) -> Obj:
    sb = ctx.sb
    currency = p["currency"].lower()
    amount = p["amount"]
    _validate_pi_money(ctx, p, amount, currency)
    if p.get("customer"):
        sb.get(ctx, p["customer"], "customer", param="customer")
    if "off_session" in p and not p.get("confirm"):
        raise invalid(
            "You may only specify `off_session` when confirming a PaymentIntent.",
            param="off_session",
        )
    pm = None
    if p.get("payment_method"):
        pm = resolve_pm(ctx, p["payment_method"])
    elif p.get("payment_method_data"):
        raise invalid(
            "The sandbox only emulates cards; pass `payment_method` (e.g. pm_card_visa).",
            param="payment_method_data[type]",
        )
    apm = p.get("automatic_payment_methods")
    pi = sb.new_object(
        "payment_intent",
        "pi",
        ctx.account,
        amount=amount,
        amount_capturable=0,
        amount_received=0,
        application=None,
        application_fee_amount=p.get("application_fee_amount"),
        automatic_payment_methods=(
            {"allow_redirects": apm.get("allow_redirects", "always"), "enabled": apm["enabled"]}
            if apm
            else (
                None
                if p.get("payment_method_types")
                else {"allow_redirects": "always", "enabled": True}
            )
        ),
        canceled_at=None,
        cancellation_reason=None,
        capture_method=p.get("capture_method", "automatic_async"),
        confirmation_method=p.get("confirmation_method", "automatic"),
        currency=currency,
        customer=p.get("customer"),
        customer_account=None,
        description=p.get("description"),
        excluded_payment_method_types=p.get("excluded_payment_method_types"),
        last_payment_error=None,
        latest_charge=None,
        managed_payments=None,
        next_action=None,
        on_behalf_of=p.get("on_behalf_of"),
        payment_method=pm["id"] if pm else None,
        payment_method_configuration_details=None,
        payment_method_options={
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        payment_method_types=p.get("payment_method_types") or ["card"],
        processing=None,
        receipt_email=p.get("receipt_email"),
        review=None,
        setup_future_usage=p.get("setup_future_usage"),
        shipping=p.get("shipping"),
        source=None,
        statement_descriptor=p.get("statement_descriptor"),
        statement_descriptor_suffix=p.get("statement_descriptor_suffix"),
        status="requires_confirmation" if pm else "requires_payment_method",
        transfer_data=(
            {
                "destination": p["transfer_data"]["destination"],
                **(
                    {"amount": p["transfer_data"]["amount"]}
                    if "amount" in p["transfer_data"]
                    else {}
                ),
            }
            if p.get("transfer_data")
            else None
        ),
        transfer_group=p.get("transfer_group"),
    )
    pi["client_secret"] = f"{pi['id']}_secret_{sb.ids.token(25)}"
    apply_metadata(pi, p.get("metadata"))
    sb.emit(ctx, "payment_intent.created", pi)
    if p.get("confirm"):
        if pm is None:
            raise _missing_pm(pi)
        _confirm_pi(ctx, pi, pm, p)
    return sb.render(pi)


def _missing_pm(pi: Obj) -> StripeError:
    return StripeError(
        400,
        "You cannot confirm this PaymentIntent because it's missing a payment method. To "
        "confirm the PaymentIntent with a customer's saved payment method, update the "
        "PaymentIntent or pass `payment_method` when confirming.",
        code="payment_intent_unexpected_state",
        extra={"payment_intent": None},
    )


def _pi_error(sb: Sandbox, err: StripeError, pi: Obj) -> StripeError:
    err.extra["payment_intent"] = sb.render(pi)
    return err


def _confirm_pi(ctx: Ctx, pi: Obj, pm: Obj, p: Obj) -> None:
    sb = ctx.sb
    _check_customer_pm(sb, pm, pi.get("customer"))
    pi["payment_method"] = pm["id"]
    pi["last_payment_error"] = None
    pi["_auth_done"] = pi.get("_auth_pm") == pm["id"]
    pi["_off_session"] = bool(p.get("off_session"))
    pi["_error_on_requires_action"] = bool(p.get("error_on_requires_action"))
    if p.get("return_url"):
        pi["_return_url"] = p["return_url"]
    if "setup_future_usage" in p:
        pi["setup_future_usage"] = p["setup_future_usage"] or None
    card = card_of(pm)
    off_session = pi["_off_session"]
    needs_auth = card.auth == "always" or (
        card.auth == "setup" and not (off_session and pm.get("_setup_ok"))
    )
    if needs_auth and not pi["_auth_done"]:
        if off_session or pi["_error_on_requires_action"]:
            ch = _fail_charge(ctx, pi, pm, "authentication_required")
            raise _pi_error(sb, _auth_required_error(pi, pm, ch), pi)
        prev_status = pi["status"]
        pi["status"] = "requires_action"
        pi["next_action"] = _next_action(sb, pi, pi.get("_return_url"))
        sb.emit(ctx, "payment_intent.requires_action", pi, {"status": prev_status})
        return
    _attempt(ctx, pi, pm)


def _auth_required_error(pi: Obj, pm: Obj, ch: Obj | None) -> StripeError:
    return StripeError(
        402,
        "Your card was declined. This transaction requires authentication.",
        type="card_error",
        code="authentication_required",
        decline_code="authentication_required",
        extra={"charge": ch["id"] if ch else None, "payment_method": None},
    )


def _fail_charge(ctx: Ctx, pi: Obj, pm: Obj, decline: str) -> Obj:
    """Record a failed charge attempt; PI back to requires_payment_method."""
    sb = ctx.sb
    ch = _new_charge(ctx, pi, pm, "failed", False)
    if decline == "authentication_required":
        code, message = (
            "authentication_required",
            ("Your card was declined. This transaction requires authentication."),
        )
    else:
        code, message, _ = DECLINES[decline]
    ch["failure_code"] = code
    ch["failure_message"] = message
    ch["paid"] = False
    ch["outcome"] = {
        **ch["outcome"],
        "network_decline_code": None,
        "network_status": "declined_by_network",
        "reason": decline,
        "seller_message": "The bank did not return any further details with this decline.",
        "type": "issuer_declined",
    }
    err = {
        "charge": ch["id"],
        "code": code,
        "decline_code": decline,
        "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
        "message": message,
        "payment_method": sb.render(pm),
        "type": "card_error",
    }
    prev_status = pi["status"]
    pi["status"] = "requires_payment_method"
    pi["last_payment_error"] = err
    pi["next_action"] = None
    sb.emit(ctx, "charge.failed", ch)
    sb.emit(ctx, "payment_intent.payment_failed", pi, {"status": prev_status})
    if not pm.get("customer"):
        pm["_consumed"] = True
    return ch


def _attempt(ctx: Ctx, pi: Obj, pm: Obj) -> None:
    """The card network step: decline, or authorize (and capture unless manual)."""
    sb = ctx.sb
    card = card_of(pm)
    if card.decline:
        ch = _fail_charge(ctx, pi, pm, card.decline)
        err = decline_error(card.decline, pm, {"charge": ch["id"]})
        err.extra["payment_method"] = sb.render(pm)
        raise _pi_error(sb, err, pi)
    if pi.get("setup_future_usage") and pi.get("customer") and not pm.get("customer"):
        pm["customer"] = pi["customer"]
        pm["_setup_ok"] = pi["setup_future_usage"] == "off_session" or pm.get("_setup_ok")
        sb.emit(ctx, "payment_method.attached", pm)
    elif pi.get("setup_future_usage") and pm.get("customer"):
        pm["_setup_ok"] = True
    prev_status = pi["status"]
    pi["next_action"] = None
    if pi["capture_method"] == "manual":
        ch = _new_charge(ctx, pi, pm, "succeeded", False)
        pi["status"] = "requires_capture"
        pi["amount_capturable"] = pi["amount"]
        sb.emit(ctx, "charge.succeeded", ch)
        sb.emit(
            ctx,
            "payment_intent.amount_capturable_updated",
            pi,
            {"amount_capturable": 0, "status": prev_status},
        )
        pi["_auth_expires"] = sb.now() + sb.auth_expiry_days * 86400
        sb.schedule(pi["_auth_expires"], "auth_expiry", pi_id=pi["id"])
    elif sb.card_processing_seconds > 0:
        ch = _new_charge(ctx, pi, pm, "pending", False)
        ch["paid"] = False
        pi["status"] = "processing"
        sb.emit(ctx, "charge.pending", ch)
        sb.emit(ctx, "payment_intent.processing", pi, {"status": prev_status})
        sb.schedule(sb.now() + sb.card_processing_seconds, "pi_processing", pi_id=pi["id"])
        return
    else:
        ch = _new_charge(ctx, pi, pm, "succeeded", True)
        _settle(ctx, pi, ch, pi["amount"])
        pi["status"] = "succeeded"
        pi["amount_received"] = pi["amount"]
        sb.emit(ctx, "charge.succeeded", ch)
        sb.emit(
            ctx,
            "payment_intent.succeeded",
            pi,
            {"status": prev_status, "amount_received": 0},
        )
        _maybe_dispute(sb, ctx, ch)
    if not pm.get("customer"):
        pm["_consumed"] = True


@task("pi_processing")
def _processing_done(sb: Sandbox, pi_id: str) -> None:
    pi = sb.objects.get(pi_id)
    if pi is None or pi["status"] != "processing":
        return
    ctx = sb.ctx(pi["_owner"])
    ch = sb.objects[pi["latest_charge"]]
    _settle(ctx, pi, ch, pi["amount"])
    ch["status"] = "succeeded"
    ch["paid"] = True
    pi["status"] = "succeeded"
    pi["amount_received"] = pi["amount"]
    sb.emit(None, "charge.succeeded", ch)
    sb.emit(None, "payment_intent.succeeded", pi, {"status": "processing", "amount_received": 0})
    _maybe_dispute(sb, None, ch)


def _maybe_dispute(sb: Sandbox, ctx: Ctx | None, ch: Obj) -> None:
    """Test cards that get disputed right after a successful charge."""
    card = card_of(sb.objects[ch["_pm"]])
    if card.dispute or card.inquiry:
        open_dispute(sb, ch["id"], "fraudulent", ctx=ctx, inquiry=card.inquiry)


def _get_pi(ctx: Ctx, pi_id: str) -> Obj:
    return ctx.sb.get(ctx, pi_id, "payment_intent", param="intent")


@route("GET", "/v1/payment_intents/{pi_id}", "PaymentIntentRetrieveParams")
def retrieve_pi(ctx: Ctx, p: Obj, pi_id: str) -> Obj:
    return ctx.sb.render(_get_pi(ctx, pi_id))


@route("POST", "/v1/payment_intents/{pi_id}", "PaymentIntentUpdateParams")
def update_pi(ctx: Ctx, p: Obj, pi_id: str) -> Obj:
    sb = ctx.sb
    pi = _get_pi(ctx, pi_id)
    always = {"metadata", "description", "receipt_email", "shipping", "expand"}
    open_states = ("requires_payment_method", "requires_confirmation", "requires_action")
    if pi["status"] not in open_states:
        restricted = [k for k in p if k not in always]
        if pi["status"] == "requires_capture":
            restricted = [k for k in restricted if k not in ("application_fee_amount",)]
        if restricted:
            raise StripeError(
                400,
                f"You cannot update this PaymentIntent's `{restricted[0]}` because it has a "
                f"status of {pi['status']}.",
                code="payment_intent_unexpected_state",
                param=restricted[0],
                extra={"payment_intent": sb.render(pi)},
            )
    amount: int = p["amount"] if "amount" in p else pi["amount"]
    currency = str(p.get("currency", pi["currency"])).lower()
    if "amount" in p or "currency" in p or "application_fee_amount" in p:
        check = {
            "application_fee_amount": p.get("application_fee_amount", pi["application_fee_amount"]),
        }
        if pi.get("transfer_data"):
            check["transfer_data"] = dict(pi["transfer_data"])
        if check["application_fee_amount"] is None:
            check.pop("application_fee_amount")
        _validate_pi_money(ctx, check, amount, currency)
    prev: Obj = {}
    if p.get("customer"):
        sb.get(ctx, p["customer"], "customer", param="customer")
    update_fields(
        pi,
        p,
        [
            "amount",
            "application_fee_amount",
            "capture_method",
            "customer",
            "description",
            "receipt_email",
            "setup_future_usage",
            "shipping",
            "statement_descriptor",
            "statement_descriptor_suffix",
            "transfer_group",
            "payment_method_types",
        ],
        prev,
    )
    if "currency" in p:
        pi["currency"] = currency
    if "amount" in p.get("transfer_data", {}) and pi.get("transfer_data"):
        pi["transfer_data"]["amount"] = p["transfer_data"]["amount"]
    if p.get("payment_method"):
        pm = resolve_pm(ctx, p["payment_method"])
        pi["payment_method"] = pm["id"]
        if pi["status"] in ("requires_payment_method", "requires_action"):
            pi["status"] = "requires_confirmation"
            pi["next_action"] = None
    apply_metadata(pi, p.get("metadata"), prev)
    return sb.render(pi)


@route("POST", "/v1/payment_intents/{pi_id}/confirm", "PaymentIntentConfirmParams")
def confirm_pi(ctx: Ctx, p: Obj, pi_id: str) -> Obj:
    sb = ctx.sb
    pi = _get_pi(ctx, pi_id)
    allowed = ("requires_payment_method", "requires_confirmation", "requires_action")
    if pi["status"] not in allowed:
        err = _unexpected("payment_intent", pi, "confirm", allowed)
        raise _pi_error(sb, err, pi)
    if p.get("payment_method"):
        pm = resolve_pm(ctx, p["payment_method"])
    elif pi.get("payment_method"):
        pm = sb.objects[pi["payment_method"]]
    else:
        raise _pi_error(sb, _missing_pm(pi), pi)
    if pi["status"] == "requires_action" and pi.get("_auth_done"):
        _attempt(ctx, pi, pm)
    else:
        _confirm_pi(ctx, pi, pm, p)
    return sb.render(pi)


@route("POST", "/v1/payment_intents/{pi_id}/capture", "PaymentIntentCaptureParams")
def capture_pi(ctx: Ctx, p: Obj, pi_id: str) -> Obj:
    sb = ctx.sb
    pi = _get_pi(ctx, pi_id)
    if pi["status"] != "requires_capture":
        raise _pi_error(sb, _unexpected("payment_intent", pi, "capture", ("requires_capture",)), pi)
    amount: int = p["amount_to_capture"] if "amount_to_capture" in p else pi["amount_capturable"]
    if amount > pi["amount_capturable"] or amount < 1:
        raise StripeError(
            400,
            "The amount to capture must be greater than zero and no more than the amount "
            f"capturable ({pi['amount_capturable']}).",
            param="amount_to_capture",
            code="amount_too_large",
            extra={"payment_intent": sb.render(pi)},
        )
    if "application_fee_amount" in p:
        if p["application_fee_amount"] > amount:
            raise invalid(
                "The application fee amount must be less than or equal to the captured amount.",
                param="application_fee_amount",
            )
        pi["application_fee_amount"] = p["application_fee_amount"]
    elif (pi.get("application_fee_amount") or 0) > amount:
        raise invalid(
            "The application fee amount must be less than or equal to the captured amount.",
            param="amount_to_capture",
        )
    apply_metadata(pi, p.get("metadata"))
    ch = sb.objects[pi["latest_charge"]]
    _settle(ctx, pi, ch, amount)
    released = pi["amount"] - amount
    ch_prev = {"amount_captured": 0, "captured": False}
    if released:
        ch["amount_refunded"] = released
        ch["_released"] = released
        ch_prev["amount_refunded"] = 0
    prev = {
        "status": pi["status"],
        "amount_capturable": pi["amount_capturable"],
        "amount_received": 0,
    }
    pi["status"] = "succeeded"
    pi["amount_capturable"] = 0
    pi["amount_received"] = amount
    sb.emit(ctx, "charge.captured", ch, ch_prev)
    sb.emit(ctx, "payment_intent.succeeded", pi, prev)
    _maybe_dispute(sb, ctx, ch)
    return sb.render(pi)


def _cancel_pi(ctx: Ctx | None, sb: Sandbox, pi: Obj, reason: str | None) -> None:
    prev = {"status": pi["status"], "canceled_at": None, "cancellation_reason": None}
    if pi["status"] == "requires_capture":
        ch = sb.objects[pi["latest_charge"]]
        ch_prev = {"amount_refunded": ch["amount_refunded"], "refunded": ch["refunded"]}
        ch["amount_refunded"] = ch["amount"]
        ch["_released"] = ch["amount"]
        ch["refunded"] = True
        prev["amount_capturable"] = pi["amount_capturable"]
        pi["amount_capturable"] = 0
        if reason == "automatic":
            sb.emit(ctx, "charge.expired", ch, ch_prev)
        else:
            sb.emit(ctx, "charge.refunded", ch, ch_prev)
    pi["status"] = "canceled"
    pi["canceled_at"] = sb.now()
    pi["cancellation_reason"] = reason
    pi["next_action"] = None
    sb.emit(ctx, "payment_intent.canceled", pi, prev)


@route("POST", "/v1/payment_intents/{pi_id}/cancel", "PaymentIntentCancelParams")
def cancel_pi(ctx: Ctx, p: Obj, pi_id: str) -> Obj:
    sb = ctx.sb
    pi = _get_pi(ctx, pi_id)
    if pi["status"] not in PI_CANCELABLE:
        raise _pi_error(sb, _unexpected("payment_intent", pi, "cancel", PI_CANCELABLE), pi)
    _cancel_pi(ctx, sb, pi, p.get("cancellation_reason"))
    return sb.render(pi)


@task("auth_expiry")
def _auth_expiry(sb: Sandbox, pi_id: str) -> None:
    pi = sb.objects.get(pi_id)
    if pi is None or pi["status"] != "requires_capture":
        return
    if pi.get("_auth_expires", 0) > sb.now():
        return
    _cancel_pi(None, sb, pi, "automatic")


@route("GET", "/v1/payment_intents", "PaymentIntentListParams")
def list_pis(ctx: Ctx, p: Obj) -> Obj:
    items = ctx.sb.objects_of("payment_intent", ctx.account)
    if "customer" in p:
        items = [x for x in items if x.get("customer") == p["customer"]]
    items = created_filter(items, p.get("created"))
    return ctx.sb.paginate(ctx, items, p, "/v1/payment_intents")


# ---------------------------------------------------------------- charges API
@route("GET", "/v1/charges/{ch_id}", "ChargeRetrieveParams")
def retrieve_charge(ctx: Ctx, p: Obj, ch_id: str) -> Obj:
    return ctx.sb.render(ctx.sb.get(ctx, ch_id, "charge"))


@route("POST", "/v1/charges/{ch_id}", "ChargeUpdateParams")
def update_charge(ctx: Ctx, p: Obj, ch_id: str) -> Obj:
    sb = ctx.sb
    ch = sb.get(ctx, ch_id, "charge")
    prev: Obj = {}
    update_fields(ch, p, ["description", "receipt_email", "shipping", "transfer_group"], prev)
    if "fraud_details" in p:
        prev["fraud_details"] = ch["fraud_details"]
        ch["fraud_details"] = dict(p["fraud_details"])
    apply_metadata(ch, p.get("metadata"), prev)
    if prev:
        sb.emit(ctx, "charge.updated", ch, prev)
    return sb.render(ch)


@route("GET", "/v1/charges", "ChargeListParams")
def list_charges(ctx: Ctx, p: Obj) -> Obj:
    items = ctx.sb.objects_of("charge", ctx.account)
    for key in ("customer", "payment_intent", "transfer_group"):
        if key in p:
            items = [c for c in items if c.get(key) == p[key]]
    items = created_filter(items, p.get("created"))
    return ctx.sb.paginate(ctx, items, p, "/v1/charges")


# ======================================================================= setup intents
@route("POST", "/v1/setup_intents", "SetupIntentCreateParams")
def create_si(ctx: Ctx, p: Obj) -> Obj:
    sb = ctx.sb
    if p.get("customer"):
        sb.get(ctx, p["customer"], "customer", param="customer")
    if p.get("on_behalf_of"):
        connected(sb, p["on_behalf_of"], "on_behalf_of")
    pm = resolve_pm(ctx, p["payment_method"]) if p.get("payment_method") else None
    apm = p.get("automatic_payment_methods")
    si = sb.new_object(
        "setup_intent",
        "seti",
        ctx.account,
        application=None,
        automatic_payment_methods=(
            {"allow_redirects": apm.get("allow_redirects", "always"), "enabled": apm["enabled"]}
            if apm
            else None
        ),
        cancellation_reason=None,
        customer=p.get("customer"),
        description=p.get("description"),
        excluded_payment_method_types=None,
        flow_directions=p.get("flow_directions"),
        last_setup_error=None,
        latest_attempt=None,
        mandate=None,
        next_action=None,
        on_behalf_of=p.get("on_behalf_of"),
        payment_method=pm["id"] if pm else None,
        payment_method_configuration_details=None,
        payment_method_options={
            "card": {
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        payment_method_types=p.get("payment_method_types") or ["card"],
        single_use_mandate=None,
        status="requires_confirmation" if pm else "requires_payment_method",
        usage=p.get("usage", "off_session"),
    )
    si["client_secret"] = f"{si['id']}_secret_{sb.ids.token(25)}"
    apply_metadata(si, p.get("metadata"))
    sb.emit(ctx, "setup_intent.created", si)
    if p.get("confirm"):
        if pm is None:
            raise StripeError(
                400,
                "You cannot confirm this SetupIntent because it's missing a payment method.",
                code="setup_intent_unexpected_state",
            )
        _confirm_si(ctx, si, pm, p)
    return sb.render(si)


def _si_error(sb: Sandbox, err: StripeError, si: Obj) -> StripeError:
    err.extra["setup_intent"] = sb.render(si)
    return err


def _confirm_si(ctx: Ctx, si: Obj, pm: Obj, p: Obj) -> None:
    sb = ctx.sb
    _check_customer_pm(sb, pm, si.get("customer"))
    si["payment_method"] = pm["id"]
    si["last_setup_error"] = None
    card = card_of(pm)
    prev_status = si["status"]
    if card.decline and card.decline_on_attach:
        code, message, _ = DECLINES[card.decline]
        si["status"] = "requires_payment_method"
        si["last_setup_error"] = {
            "code": code,
            "decline_code": card.decline,
            "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
            "message": message,
            "payment_method": sb.render(pm),
            "type": "card_error",
        }
        sb.emit(ctx, "setup_intent.setup_failed", si, {"status": prev_status})
        pm["_consumed"] = True
        err = decline_error(card.decline, pm)
        err.extra["payment_method"] = sb.render(pm)
        raise _si_error(sb, err, si)
    if card.auth in ("always", "setup"):
        si["status"] = "requires_action"
        si["next_action"] = _next_action(sb, si, p.get("return_url"))
        sb.emit(ctx, "setup_intent.requires_action", si, {"status": prev_status})
        return
    _succeed_si(ctx, si, pm)


def _succeed_si(ctx: Ctx, si: Obj, pm: Obj) -> None:
    sb = ctx.sb
    prev_status = si["status"]
    si["status"] = "succeeded"
    si["next_action"] = None
    pm["_setup_ok"] = True
    if si.get("customer") and not pm.get("customer"):
        pm["customer"] = si["customer"]
        sb.emit(ctx, "payment_method.attached", pm)
    sb.emit(ctx, "setup_intent.succeeded", si, {"status": prev_status})


def _get_si(ctx: Ctx, si_id: str) -> Obj:
    return ctx.sb.get(ctx, si_id, "setup_intent", param="intent")


@route("GET", "/v1/setup_intents/{si_id}", "SetupIntentRetrieveParams")
def retrieve_si(ctx: Ctx, p: Obj, si_id: str) -> Obj:
    return ctx.sb.render(_get_si(ctx, si_id))


@route("POST", "/v1/setup_intents/{si_id}", "SetupIntentUpdateParams")
def update_si(ctx: Ctx, p: Obj, si_id: str) -> Obj:
    sb = ctx.sb
    si = _get_si(ctx, si_id)
    if si["status"] in ("succeeded", "canceled") and any(
        k not in ("metadata", "description", "expand") for k in p
    ):
        raise _si_error(
            sb,
            _unexpected(
                "setup_intent",
                si,
                "update",
                ("requires_payment_method", "requires_confirmation", "requires_action"),
            ),
            si,
        )
    prev: Obj = {}
    if p.get("customer"):
        sb.get(ctx, p["customer"], "customer", param="customer")
    update_fields(si, p, ["customer", "description", "payment_method_types"], prev)
    if p.get("payment_method"):
        pm = resolve_pm(ctx, p["payment_method"])
        si["payment_method"] = pm["id"]
        if si["status"] in ("requires_payment_method", "requires_action"):
            si["status"] = "requires_confirmation"
            si["next_action"] = None
    apply_metadata(si, p.get("metadata"), prev)
    return sb.render(si)


@route("POST", "/v1/setup_intents/{si_id}/confirm", "SetupIntentConfirmParams")
def confirm_si(ctx: Ctx, p: Obj, si_id: str) -> Obj:
    sb = ctx.sb
    si = _get_si(ctx, si_id)
    allowed = ("requires_payment_method", "requires_confirmation", "requires_action")
    if si["status"] not in allowed:
        raise _si_error(sb, _unexpected("setup_intent", si, "confirm", allowed), si)
    if p.get("payment_method"):
        pm = resolve_pm(ctx, p["payment_method"])
    elif si.get("payment_method"):
        pm = sb.objects[si["payment_method"]]
    else:
        raise StripeError(
            400,
            "You cannot confirm this SetupIntent because it's missing a payment method.",
            code="setup_intent_unexpected_state",
            extra={"setup_intent": sb.render(si)},
        )
    _confirm_si(ctx, si, pm, p)
    return sb.render(si)


@route("POST", "/v1/setup_intents/{si_id}/cancel", "SetupIntentCancelParams")
def cancel_si(ctx: Ctx, p: Obj, si_id: str) -> Obj:
    sb = ctx.sb
    si = _get_si(ctx, si_id)
    allowed = ("requires_payment_method", "requires_confirmation", "requires_action")
    if si["status"] not in allowed:
        raise _si_error(sb, _unexpected("setup_intent", si, "cancel", allowed), si)
    prev = {"status": si["status"], "cancellation_reason": None}
    si["status"] = "canceled"
    si["cancellation_reason"] = p.get("cancellation_reason")
    si["next_action"] = None
    sb.emit(ctx, "setup_intent.canceled", si, prev)
    return sb.render(si)


@route("GET", "/v1/setup_intents", "SetupIntentListParams")
def list_sis(ctx: Ctx, p: Obj) -> Obj:
    items = ctx.sb.objects_of("setup_intent", ctx.account)
    for key in ("customer", "payment_method"):
        if key in p:
            items = [x for x in items if x.get(key) == p[key]]
    items = created_filter(items, p.get("created"))
    return ctx.sb.paginate(ctx, items, p, "/v1/setup_intents")


# ======================================================================= 3-D Secure (control)
def complete_3ds(sb: Sandbox, intent_id: str) -> Obj:
    """The customer passes the challenge."""
    intent = sb.objects.get(intent_id)
    if intent is None or intent.get("object") not in ("payment_intent", "setup_intent"):
        raise SandboxError(f"no such intent: {intent_id}")
    if intent["status"] != "requires_action":
        raise SandboxError(f"{intent_id} is {intent['status']}, not requires_action")
    ctx = sb.ctx(intent["_owner"])
    pm = sb.objects[intent["payment_method"]]
    if intent["object"] == "setup_intent":
        _succeed_si(ctx, intent, pm)
        return sb.render(intent)
    intent["_auth_done"] = True
    intent["_auth_pm"] = pm["id"]
    if intent.get("confirmation_method") == "manual":
        intent["status"] = "requires_confirmation"
        intent["next_action"] = None
        return sb.render(intent)
    with contextlib.suppress(StripeError):  # a decline is recorded on the intent
        _attempt(ctx, intent, pm)
    return sb.render(intent)


def fail_3ds(sb: Sandbox, intent_id: str) -> Obj:
    """The customer fails (or abandons) the challenge."""
    intent = sb.objects.get(intent_id)
    if intent is None or intent.get("object") not in ("payment_intent", "setup_intent"):
        raise SandboxError(f"no such intent: {intent_id}")
    if intent["status"] != "requires_action":
        raise SandboxError(f"{intent_id} is {intent['status']}, not requires_action")
    ctx = sb.ctx(intent["_owner"])
    pm = sb.objects[intent["payment_method"]]
    is_pi = intent["object"] == "payment_intent"
    kind = "payment_intent" if is_pi else "setup_intent"
    code = f"{kind}_authentication_failure"
    error = {
        "code": code,
        "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
        "message": f"The provided PaymentMethod has failed authentication. You can provide "
        f"payment_method_data or a new PaymentMethod to attempt to fulfill this "
        f"{'PaymentIntent' if is_pi else 'SetupIntent'} again.",
        "payment_method": sb.render(pm),
        "type": "invalid_request_error",
    }
    prev = {"status": intent["status"]}
    intent["status"] = "requires_payment_method"
    intent["next_action"] = None
    if is_pi:
        intent["last_payment_error"] = error
        sb.emit(ctx, "payment_intent.payment_failed", intent, prev)
    else:
        intent["last_setup_error"] = error
        sb.emit(ctx, "setup_intent.setup_failed", intent, prev)
    return sb.render(intent)
