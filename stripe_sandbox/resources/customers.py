"""Customers and payment methods (cards, with Stripe's test tokens and numbers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stripe_sandbox.errors import StripeError, invalid, no_such
from stripe_sandbox.resources.common import apply_metadata, created_filter, update_fields
from stripe_sandbox.router import route

if TYPE_CHECKING:
    from stripe_sandbox.core import Ctx, Sandbox

Obj = dict[str, Any]


@dataclass(frozen=True)
class TestCard:
    brand: str
    last4: str
    number: str
    funding: str = "credit"
    country: str = "US"
    decline: str | None = None  # decline_code at charge time
    decline_on_attach: bool = True
    auth: str | None = None  # "always" | "setup"
    dispute: bool = False
    inquiry: bool = False
    bypass_pending: bool = False
    refund_fails: bool = False


TEST_CARDS: dict[str, TestCard] = {
    "visa": TestCard("visa", "4242", "4242424242424242"),
    "visa_debit": TestCard("visa", "5556", "4000056655665556", funding="debit"),
    "mastercard": TestCard("mastercard", "4444", "5555555555554444"),
    "mastercard_debit": TestCard("mastercard", "8210", "5200828282828210", funding="debit"),
    "amex": TestCard("amex", "8431", "378282246310005"),
    "discover": TestCard("discover", "1117", "6011111111111117"),
    "chargeDeclined": TestCard("visa", "0002", "4000000000000002", decline="generic_decline"),
    "chargeDeclinedInsufficientFunds": TestCard(
        "visa", "9995", "4000000000009995", decline="insufficient_funds"
    ),
    "chargeDeclinedLostCard": TestCard("visa", "9987", "4000000000009987", decline="lost_card"),
    "chargeDeclinedStolenCard": TestCard("visa", "9979", "4000000000009979", decline="stolen_card"),
    "chargeDeclinedExpiredCard": TestCard(
        "visa", "0069", "4000000000000069", decline="expired_card"
    ),
    "chargeDeclinedIncorrectCvc": TestCard(
        "visa", "0127", "4000000000000127", decline="incorrect_cvc"
    ),
    "chargeDeclinedProcessingError": TestCard(
        "visa", "0119", "4000000000000119", decline="processing_error"
    ),
    "chargeDeclinedFraudulent": TestCard("visa", "0019", "4100000000000019", decline="fraudulent"),
    "chargeCustomerFail": TestCard(
        "visa", "0341", "4000000000000341", decline="generic_decline", decline_on_attach=False
    ),
    "authenticationRequired": TestCard("visa", "3184", "4000002760003184", auth="always"),
    "threeDSecure2Required": TestCard("visa", "3220", "4000000000003220", auth="always"),
    "authenticationRequiredOnSetup": TestCard("visa", "3155", "4000002500003155", auth="setup"),
    "createDispute": TestCard("visa", "0259", "4000000000000259", dispute=True),
    "createDisputeInquiry": TestCard("visa", "1976", "4000000000001976", inquiry=True),
    "bypassPending": TestCard("visa", "0077", "4000000000000077", bypass_pending=True),
    "refundFail": TestCard("visa", "5126", "4000000000005126", refund_fails=True),
}
_BY_NUMBER = {c.number: name for name, c in TEST_CARDS.items()}

DECLINES: dict[str, tuple[str, str, str | None]] = {
    # decline_code: (error code, message, param)
    "generic_decline": ("card_declined", "Your card was declined.", None),
    "insufficient_funds": ("card_declined", "Your card has insufficient funds.", None),
    "lost_card": ("card_declined", "Your card was declined.", None),
    "stolen_card": ("card_declined", "Your card was declined.", None),
    "fraudulent": ("card_declined", "Your card was declined.", None),
    "expired_card": ("expired_card", "Your card has expired.", "exp_month"),
    "incorrect_cvc": ("incorrect_cvc", "Your card's security code is incorrect.", "cvc"),
    "processing_error": (
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
        None,
    ),
}


def card_of(pm: Obj) -> TestCard:
    return TEST_CARDS[pm["_card"]]


def _billing_details(src: Obj | None) -> Obj:
    src = src or {}
    addr = src.get("address") or {}
    return {
        "address": {
            k: addr.get(k) or None
            for k in ("city", "country", "line1", "line2", "postal_code", "state")
        },
        "email": src.get("email") or None,
        "name": src.get("name") or None,
        "phone": src.get("phone") or None,
        "tax_id": None,
    }


def new_card_pm(
    sb: Sandbox,
    owner: str | None,
    card_name: str,
    exp_month: int = 12,
    exp_year: int | None = None,
    billing: Obj | None = None,
    metadata: Any = None,
) -> Obj:
    card = TEST_CARDS[card_name]
    import datetime

    year = exp_year or datetime.datetime.fromtimestamp(sb.now(), datetime.UTC).year + 3
    pm = sb.new_object(
        "payment_method",
        "pm",
        owner,
        allow_redisplay="unspecified",
        billing_details=_billing_details(billing),
        card={
            "brand": card.brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "unchecked",
            },
            "country": card.country,
            "display_brand": card.brand,
            "exp_month": exp_month,
            "exp_year": year,
            "fingerprint": "fp" + card.number[-8:] + card.brand[:4],
            "funding": card.funding,
            "generated_from": None,
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        customer=None,
        customer_account=None,
        type="card",
    )
    pm["_card"] = card_name
    apply_metadata(pm, metadata)
    return pm


def test_token_card(token: str) -> str | None:
    for prefix in ("pm_card_", "tok_"):
        if token.startswith(prefix) and token[len(prefix) :] in TEST_CARDS:
            return token[len(prefix) :]
    return None


def resolve_pm(ctx: Ctx, pm_id: str, param: str = "payment_method") -> Obj:
    """A usable payment method; a test token (``pm_card_visa``) yields a fresh ``pm_``."""
    name = test_token_card(pm_id)
    if name is not None:
        return new_card_pm(ctx.sb, ctx.account, name)
    pm = ctx.sb.find(pm_id, "payment_method")
    if pm is None or pm["_owner"] != ctx.account:
        raise no_such("PaymentMethod", pm_id, param)
    return pm


def decline_error(
    decline: str, pm: Obj | None, extra: Obj | None = None, status: int = 402
) -> StripeError:
    code, message, param = DECLINES[decline]
    err_extra: Obj = dict(extra or {})
    if pm is not None:
        err_extra.setdefault("payment_method", None)
    return StripeError(
        status,
        message,
        type="card_error",
        code=code,
        decline_code=decline,
        param=param,
        extra=err_extra,
    )


# ---------------------------------------------------------------- customers
@route("POST", "/v1/customers", "CustomerCreateParams")
def create_customer(ctx: Ctx, p: Obj) -> Obj:
    sb = ctx.sb
    cus = sb.new_object(
        "customer",
        "cus",
        ctx.account,
        address=p.get("address"),
        description=p.get("description"),
        email=p.get("email"),
        name=p.get("name"),
        phone=p.get("phone"),
        shipping=p.get("shipping"),
        invoice_prefix=sb.ids.token(8).upper(),
        currency=None,
        default_source=None,
        discount=None,
        test_clock=None,
    )
    apply_metadata(cus, p.get("metadata"))
    if p.get("payment_method"):
        pm = resolve_pm(ctx, p["payment_method"])
        _attach(ctx, pm, cus)
    if p.get("invoice_settings", {}).get("default_payment_method"):
        cus["invoice_settings"]["default_payment_method"] = p["invoice_settings"][
            "default_payment_method"
        ]
    sb.emit(ctx, "customer.created", cus)
    return sb.render(cus)


@route("GET", "/v1/customers/{cus_id}", "CustomerRetrieveParams")
def retrieve_customer(ctx: Ctx, p: Obj, cus_id: str) -> Obj:
    obj = ctx.sb.find(cus_id, "customer")
    if obj is None or obj["_owner"] != ctx.account:
        deleted = ctx.sb.objects.get(cus_id)
        if deleted is not None and deleted.get("_deleted") and deleted["_owner"] == ctx.account:
            return {"id": cus_id, "object": "customer", "deleted": True}
        raise no_such("customer", cus_id)
    return ctx.sb.render(obj)


@route("POST", "/v1/customers/{cus_id}", "CustomerUpdateParams")
def update_customer(ctx: Ctx, p: Obj, cus_id: str) -> Obj:
    sb = ctx.sb
    cus = sb.get(ctx, cus_id, "customer")
    prev: Obj = {}
    update_fields(cus, p, ["address", "description", "email", "name", "phone", "shipping"], prev)
    apply_metadata(cus, p.get("metadata"), prev)
    if "invoice_settings" in p:
        dpm = p["invoice_settings"].get("default_payment_method")
        if dpm:
            pm = sb.find(dpm, "payment_method")
            if pm is None or pm.get("customer") != cus["id"]:
                raise invalid(
                    f"No such PaymentMethod: '{dpm}'",
                    param="invoice_settings[default_payment_method]",
                    code="resource_missing",
                )
        old = dict(cus["invoice_settings"])
        cus["invoice_settings"]["default_payment_method"] = dpm or None
        if old != cus["invoice_settings"]:
            prev["invoice_settings"] = old
    if prev:
        sb.emit(ctx, "customer.updated", cus, prev)
    return sb.render(cus)


@route("DELETE", "/v1/customers/{cus_id}", "CustomerDeleteParams")
def delete_customer(ctx: Ctx, p: Obj, cus_id: str) -> Obj:
    sb = ctx.sb
    cus = sb.get(ctx, cus_id, "customer")
    for pm in sb.objects_of("payment_method", ctx.account):
        if pm.get("customer") == cus_id:
            pm["customer"] = None
            pm["_consumed"] = True
    sb.emit(ctx, "customer.deleted", cus)
    cus["_deleted"] = True
    return {"id": cus_id, "object": "customer", "deleted": True}


@route("GET", "/v1/customers", "CustomerListParams")
def list_customers(ctx: Ctx, p: Obj) -> Obj:
    items = ctx.sb.objects_of("customer", ctx.account)
    if "email" in p:
        items = [c for c in items if c.get("email") == p["email"]]
    items = created_filter(items, p.get("created"))
    return ctx.sb.paginate(ctx, items, p, "/v1/customers")


# ---------------------------------------------------------------- payment methods
@route("POST", "/v1/payment_methods", "PaymentMethodCreateParams")
def create_payment_method(ctx: Ctx, p: Obj) -> Obj:
    sb = ctx.sb
    if p.get("payment_method"):
        # Cloning a platform customer's payment method onto a connected account.
        if ctx.account is None:
            pm = resolve_pm(ctx, p["payment_method"])
            return sb.render(pm)
        src = sb.find(p["payment_method"], "payment_method")
        if src is None or src["_owner"] is not None:
            raise no_such("PaymentMethod", p["payment_method"], "payment_method")
        if src.get("customer") and src["customer"] != p.get("customer"):
            raise invalid(
                "The payment method you provided belongs to a different customer.",
                param="customer",
            )
        clone = new_card_pm(sb, ctx.account, src["_card"])
        clone["card"]["exp_month"] = src["card"]["exp_month"]
        clone["card"]["exp_year"] = src["card"]["exp_year"]
        clone["billing_details"] = dict(src["billing_details"])
        return sb.render(clone)
    ptype = p.get("type")
    if ptype is None:
        raise invalid("Missing required param: type.", param="type")
    if ptype != "card":
        raise invalid(
            f"The payment method type `{ptype}` is not supported by this sandbox.",
            param="type",
        )
    card = p.get("card")
    if not isinstance(card, dict):
        raise invalid("Missing required param: card.", param="card")
    name: str | None
    if "token" in card:
        name = test_token_card(card["token"])
        if name is None:
            raise no_such("token", card["token"], "card[token]")
        exp_month, exp_year = 12, None
    else:
        number = str(card.get("number", "")).replace(" ", "")
        name = _BY_NUMBER.get(number)
        if name is None:
            raise StripeError(
                402,
                "Your card number is incorrect.",
                type="card_error",
                code="incorrect_number",
                param="card[number]",
            )
        for key in ("exp_month", "exp_year"):
            if key not in card:
                raise invalid(f"Missing required param: card[{key}].", param=f"card[{key}]")
        exp_month, exp_year = int(card["exp_month"]), int(card["exp_year"])
        if exp_year < 100:
            exp_year += 2000
    pm = new_card_pm(
        sb, ctx.account, name, exp_month, exp_year, p.get("billing_details"), p.get("metadata")
    )
    return sb.render(pm)


def _get_pm(ctx: Ctx, pm_id: str) -> Obj:
    if test_token_card(pm_id):
        return resolve_pm(ctx, pm_id, "payment_method")
    return ctx.sb.get(ctx, pm_id, "payment_method", "PaymentMethod", "payment_method")


@route("GET", "/v1/payment_methods/{pm_id}", "PaymentMethodRetrieveParams")
def retrieve_payment_method(ctx: Ctx, p: Obj, pm_id: str) -> Obj:
    return ctx.sb.render(_get_pm(ctx, pm_id))


@route("POST", "/v1/payment_methods/{pm_id}", "PaymentMethodUpdateParams")
def update_payment_method(ctx: Ctx, p: Obj, pm_id: str) -> Obj:
    sb = ctx.sb
    pm = _get_pm(ctx, pm_id)
    prev: Obj = {}
    if "billing_details" in p:
        prev["billing_details"] = pm["billing_details"]
        merged = dict(pm["billing_details"])
        merged.update({k: v for k, v in p["billing_details"].items() if k != "address"})
        if "address" in p["billing_details"]:
            merged["address"] = {**merged["address"], **p["billing_details"]["address"]}
        pm["billing_details"] = merged
    if "card" in p:
        prev["card"] = dict(pm["card"])
        for key in ("exp_month", "exp_year"):
            if key in p["card"]:
                pm["card"][key] = int(p["card"][key])
    if "allow_redisplay" in p:
        prev["allow_redisplay"] = pm["allow_redisplay"]
        pm["allow_redisplay"] = p["allow_redisplay"]
    apply_metadata(pm, p.get("metadata"), prev)
    if prev and pm.get("customer"):
        sb.emit(ctx, "payment_method.updated", pm, prev)
    return sb.render(pm)


@route("GET", "/v1/payment_methods", "PaymentMethodListParams")
def list_payment_methods(ctx: Ctx, p: Obj) -> Obj:
    items = [pm for pm in ctx.sb.objects_of("payment_method", ctx.account) if pm.get("customer")]
    if "customer" in p:
        items = [pm for pm in items if pm.get("customer") == p["customer"]]
    if "type" in p:
        items = [pm for pm in items if pm["type"] == p["type"]]
    return ctx.sb.paginate(ctx, items, p, "/v1/payment_methods")


def check_usable(pm: Obj) -> None:
    if pm.get("_consumed"):
        raise invalid(
            "This PaymentMethod was previously used without being attached to a Customer or "
            "was detached from a Customer, and may not be used again.",
            param="payment_method",
        )


def _attach(ctx: Ctx, pm: Obj, cus: Obj) -> None:
    check_usable(pm)
    if pm.get("customer") == cus["id"]:
        return
    if pm.get("customer"):
        raise invalid(
            "The payment method you provided has already been attached to a customer.",
            param="payment_method",
            code="payment_method_unexpected_state",
        )
    card = card_of(pm)
    if card.decline and card.decline_on_attach:
        raise decline_error(card.decline, pm)
    pm["customer"] = cus["id"]
    ctx.sb.emit(ctx, "payment_method.attached", pm)


def attach_pm(ctx: Ctx, pm: Obj, customer_id: str) -> None:
    cus = ctx.sb.get(ctx, customer_id, "customer", param="customer")
    _attach(ctx, pm, cus)


@route("POST", "/v1/payment_methods/{pm_id}/attach", "PaymentMethodAttachParams")
def attach_payment_method(ctx: Ctx, p: Obj, pm_id: str) -> Obj:
    if "customer" not in p:
        raise invalid("Missing required param: customer.", param="customer")
    pm = _get_pm(ctx, pm_id)
    attach_pm(ctx, pm, p["customer"])
    return ctx.sb.render(pm)


@route("POST", "/v1/payment_methods/{pm_id}/detach", "PaymentMethodDetachParams")
def detach_payment_method(ctx: Ctx, p: Obj, pm_id: str) -> Obj:
    sb = ctx.sb
    pm = _get_pm(ctx, pm_id)
    if not pm.get("customer"):
        raise invalid(
            "The payment method you provided is not attached to a customer so detachment is "
            "impossible.",
            param="payment_method",
            code="payment_method_unexpected_state",
        )
    prev = {"customer": pm["customer"]}
    cus = sb.find(pm["customer"], "customer")
    if cus is not None and cus["invoice_settings"].get("default_payment_method") == pm["id"]:
        cus["invoice_settings"]["default_payment_method"] = None
    pm["customer"] = None
    pm["_consumed"] = True
    sb.emit(ctx, "payment_method.detached", pm, prev)
    return sb.render(pm)


@route("GET", "/v1/customers/{cus_id}/payment_methods", "CustomerPaymentMethodListParams")
def list_customer_payment_methods(ctx: Ctx, p: Obj, cus_id: str) -> Obj:
    sb = ctx.sb
    sb.get(ctx, cus_id, "customer")
    items = [
        pm for pm in sb.objects_of("payment_method", ctx.account) if pm.get("customer") == cus_id
    ]
    if "type" in p:
        items = [pm for pm in items if pm["type"] == p["type"]]
    return sb.paginate(ctx, items, p, f"/v1/customers/{cus_id}/payment_methods")


@route(
    "GET",
    "/v1/customers/{cus_id}/payment_methods/{pm_id}",
    "CustomerPaymentMethodRetrieveParams",
)
def retrieve_customer_payment_method(ctx: Ctx, p: Obj, cus_id: str, pm_id: str) -> Obj:
    sb = ctx.sb
    sb.get(ctx, cus_id, "customer")
    pm = sb.get(ctx, pm_id, "payment_method", "PaymentMethod")
    if pm.get("customer") != cus_id:
        raise no_such("PaymentMethod", pm_id)
    return sb.render(pm)
