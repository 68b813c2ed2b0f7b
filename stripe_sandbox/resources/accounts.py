"""Accounts (Connect), capabilities, account links, account sessions, login links."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from stripe_sandbox.errors import SandboxError, StripeError, invalid, no_such
from stripe_sandbox.resources import render_hook, task
from stripe_sandbox.resources.common import apply_metadata, created_filter, list_of
from stripe_sandbox.router import route
from stripe_sandbox.shapes import template

if TYPE_CHECKING:
    from stripe_sandbox.core import Ctx, Sandbox

Obj = dict[str, Any]

DEFAULT_REQUIREMENTS = [
    "business_profile.mcc",
    "business_profile.url",
    "business_type",
    "external_account",
    "representative.first_name",
    "representative.last_name",
    "tos_acceptance.date",
    "tos_acceptance.ip",
]

# Stripe's test bank account numbers that make payouts fail, and why.
FAILING_ACCOUNT_NUMBERS = {
    "000111111116": "no_account",
    "000111111113": "account_closed",
    "000222222227": "insufficient_funds",
    "000333333335": "debit_not_authorized",
    "000444444440": "invalid_currency",
}


def _requirements(due: list[str], past_due: list[str], deadline: int | None) -> Obj:
    return {
        "alternatives": [],
        "current_deadline": deadline,
        "currently_due": list(due),
        "disabled_reason": "requirements.past_due" if past_due else None,
        "errors": [],
        "eventually_due": list(due),
        "past_due": list(past_due),
        "pending_verification": [],
    }


def _controller_for_type(acct_type: str) -> Obj:
    if acct_type == "express":
        return {
            "fees": {"payer": "application"},
            "is_controller": True,
            "losses": {"payments": "application"},
            "requirement_collection": "stripe",
            "stripe_dashboard": {"type": "express"},
            "type": "application",
        }
    if acct_type == "custom":
        return {
            "fees": {"payer": "application"},
            "is_controller": True,
            "losses": {"payments": "application"},
            "requirement_collection": "application",
            "stripe_dashboard": {"type": "none"},
            "type": "application",
        }
    return {
        "fees": {"payer": "account"},
        "is_controller": True,
        "losses": {"payments": "stripe"},
        "requirement_collection": "stripe",
        "stripe_dashboard": {"type": "full"},
        "type": "application",
    }


def _controller_from_params(p: Obj) -> tuple[Obj, str]:
    dash = (p.get("stripe_dashboard") or {}).get("type", "full")
    fees = (p.get("fees") or {}).get("payer", "account" if dash == "full" else "application")
    losses = (p.get("losses") or {}).get(
        "payments", "stripe" if fees == "account" else "application"
    )
    collection = p.get("requirement_collection", "application" if dash == "none" else "stripe")
    if dash == "none" and collection != "application":
        raise invalid(
            "You must set `controller[requirement_collection]` to `application` when "
            "`controller[stripe_dashboard][type]` is `none`.",
            param="controller[requirement_collection]",
        )
    ctrl = {
        "fees": {"payer": fees},
        "is_controller": True,
        "losses": {"payments": losses},
        "requirement_collection": collection,
        "stripe_dashboard": {"type": dash},
        "type": "application",
    }
    if dash == "express" and losses == "application" and collection == "stripe":
        acct_type = "express"
    elif dash == "full" and fees == "account" and losses == "stripe":
        acct_type = "standard"
    elif dash == "none" and collection == "application" and losses == "application":
        acct_type = "custom"
    else:
        acct_type = "none"
    return ctrl, acct_type


def _settings(country: str) -> Obj:
    return {
        "bacs_debit_payments": {"display_name": None, "service_user_number": None},
        "branding": {
            "icon": None,
            "logo": None,
            "primary_color": None,
            "secondary_color": None,
        },
        "card_issuing": {"tos_acceptance": {"date": None, "ip": None}},
        "card_payments": {
            "decline_on": {"avs_failure": False, "cvc_failure": False},
            "statement_descriptor_prefix": None,
            "statement_descriptor_prefix_kana": None,
            "statement_descriptor_prefix_kanji": None,
        },
        "dashboard": {"display_name": None, "timezone": "Etc/UTC"},
        "invoices": {"default_account_tax_ids": None, "hosted_payment_method_save": None},
        "payments": {
            "statement_descriptor": None,
            "statement_descriptor_kana": None,
            "statement_descriptor_kanji": None,
        },
        "payouts": {
            "debit_negative_balances": True,
            "schedule": {"delay_days": 2, "interval": "manual"},
            "statement_descriptor": None,
        },
        "sepa_debit_payments": {},
    }


def create_platform(sb: Sandbox) -> None:
    acct = sb.new_object(
        "account",
        "acct",
        None,
        id=sb.platform_id,
        business_profile={"name": "Sandbox platform", "url": None, "mcc": None},
        business_type="company",
        capabilities={"card_payments": "active", "transfers": "active"},
        charges_enabled=True,
        payouts_enabled=True,
        details_submitted=True,
        controller={"type": "account"},
        country=sb.platform_country,
        default_currency=sb.default_currency,
        email="platform@example.com",
        requirements=_requirements([], [], None),
        future_requirements=_requirements([], [], None),
        settings=_settings(sb.platform_country),
        tos_acceptance={"date": sb.now(), "ip": "127.0.0.1", "user_agent": None},
        type="standard",
    )
    acct["_platform"] = True
    acct["_caps"] = {}


def connected(sb: Sandbox, account_id: str, param: str = "destination") -> Obj:
    acct = sb.find(account_id, "account")
    if acct is None or acct.get("_platform") or acct.get("_deauthorized"):
        raise no_such("destination" if param == "destination" else "account", account_id, param)
    return acct


def has_capability(acct: Obj, name: str) -> bool:
    if acct.get("_platform"):
        return True
    cap = acct["_caps"].get(name)
    return bool(cap and cap["status"] == "active")


def _new_cap(sb: Sandbox, requested: bool) -> Obj:
    return {
        "requested": requested,
        "requested_at": sb.now() if requested else None,
        "status": "inactive" if requested else "unrequested",
    }


def _sync_account(acct: Obj) -> None:
    acct["capabilities"] = {k: v["status"] for k, v in sorted(acct["_caps"].items())}


def _snapshot(sb: Sandbox, acct: Obj) -> Obj:
    return sb.render(acct)


def _diff(before: Obj, after: Obj) -> Obj:
    return {k: v for k, v in before.items() if after.get(k) != v}


def emit_account_updated(sb: Sandbox, ctx: Ctx | None, acct: Obj, before: Obj) -> None:
    after = sb.render(acct)
    prev = _diff(before, after)
    if prev:
        sb.emit(ctx, "account.updated", acct, prev, owner=acct["id"], data_object=after)


def _bank_account(sb: Sandbox, acct: Obj, spec: Any) -> Obj:
    number = "000123456789"
    country = acct.get("country") or "US"
    currency = acct.get("default_currency") or "usd"
    holder = None
    if isinstance(spec, dict):
        number = str(spec.get("account_number") or number)
        country = str(spec.get("country") or country)
        currency = str(spec.get("currency") or currency).lower()
        holder = spec.get("account_holder_name")
    elif isinstance(spec, str) and not spec.startswith("btok_"):
        raise invalid(f"No such token: '{spec}'", param="external_account")
    ba = sb.new_object(
        "bank_account",
        "ba",
        acct["id"],
        account=acct["id"],
        account_holder_name=holder,
        account_holder_type=None,
        bank_name="STRIPE TEST BANK",
        country=country,
        currency=currency,
        default_for_currency=True,
        fingerprint=sb.ids.token(16),
        last4=number[-4:],
        routing_number="110000000",
        status="new",
        available_payout_methods=["standard"],
    )
    ba["_account_number"] = number
    for other in sb.objects_of("bank_account", acct["id"]):
        if other is not ba:
            other["default_for_currency"] = False
    return ba


@render_hook("account")
def _render_account(sb: Sandbox, obj: Obj, out: Obj) -> None:
    banks = sb.objects_of("bank_account", obj["id"]) if not obj.get("_platform") else []
    out["external_accounts"] = list_of(sb, banks, f"/v1/accounts/{obj['id']}/external_accounts")


def _render_capability(sb: Sandbox, acct: Obj, name: str) -> Obj:
    cap = acct["_caps"][name]
    out = template("capability")
    due = acct["requirements"]["currently_due"] if cap["status"] != "active" else []
    past = acct["requirements"]["past_due"] if cap["status"] != "active" else []
    out.update(
        id=name,
        account=acct["id"],
        requested=cap["requested"],
        requested_at=cap["requested_at"],
        status=cap["status"],
        requirements=_requirements(due, past, acct["requirements"]["current_deadline"]),
        future_requirements=_requirements([], [], None),
    )
    return out


def _apply_capabilities(sb: Sandbox, acct: Obj, caps: Obj) -> list[str]:
    changed = []
    for name, spec in caps.items():
        requested = bool(spec.get("requested"))
        cap = acct["_caps"].get(name)
        if cap is None:
            acct["_caps"][name] = _new_cap(sb, requested)
            changed.append(name)
        elif cap["requested"] != requested:
            cap["requested"] = requested
            cap["requested_at"] = sb.now() if requested else None
            if not requested:
                cap["status"] = "inactive"
            elif acct.get("details_submitted") and not acct["requirements"]["past_due"]:
                cap["status"] = "active"
            else:
                cap["status"] = "inactive"
            changed.append(name)
    _sync_account(acct)
    return changed


@route("POST", "/v1/accounts", "AccountCreateParams")
def create_account(ctx: Ctx, p: Obj) -> Obj:
    sb = ctx.sb
    if ctx.account is not None:
        raise StripeError(
            400,
            "You cannot create connected accounts on behalf of a connected account.",
        )
    if "type" in p and "controller" in p:
        raise invalid(
            "You cannot specify both `type` and `controller` when creating an account.",
            param="type",
        )
    if "controller" in p:
        controller, acct_type = _controller_from_params(p["controller"])
    else:
        acct_type = p.get("type", "standard")
        controller = _controller_for_type(acct_type)
    country = str(p.get("country", sb.platform_country)).upper()
    due = list(DEFAULT_REQUIREMENTS)
    acct = sb.new_object(
        "account",
        "acct",
        None,
        business_profile={
            "annual_revenue": None,
            "estimated_worker_count": None,
            "mcc": None,
            "name": None,
            "product_description": None,
            "support_address": None,
            "support_email": None,
            "support_phone": None,
            "support_url": None,
            "url": None,
            **(p.get("business_profile") or {}),
        },
        business_type=p.get("business_type"),
        charges_enabled=False,
        payouts_enabled=False,
        details_submitted=False,
        controller=controller,
        country=country,
        default_currency=str(p.get("default_currency", sb.default_currency)).lower(),
        email=p.get("email"),
        requirements=_requirements(due, due, None),
        future_requirements=_requirements([], [], None),
        settings=_settings(country),
        tos_acceptance={"date": None, "ip": None, "user_agent": None},
        type=acct_type,
    )
    acct["_caps"] = {}
    apply_metadata(acct, p.get("metadata"))
    _apply_capabilities(sb, acct, p.get("capabilities") or {})
    if p.get("external_account"):
        _bank_account(sb, acct, p["external_account"])
    if p.get("tos_acceptance"):
        acct["tos_acceptance"].update(p["tos_acceptance"])
    return sb.render(acct)


def _get_account(ctx: Ctx, account_id: str) -> Obj:
    sb = ctx.sb
    acct = sb.find(account_id, "account")
    if acct is None or acct.get("_deauthorized"):
        raise StripeError(
            403 if account_id.startswith("acct_") else 404,
            f"The provided key does not have access to account '{account_id}' (or that "
            "account does not exist). Application access may have been revoked.",
            code="account_invalid",
        )
    if ctx.account is not None and ctx.account != account_id:
        raise StripeError(
            403,
            f"The provided key does not have access to account '{account_id}' (or that "
            "account does not exist). Application access may have been revoked.",
            code="account_invalid",
        )
    return acct


@route("GET", "/v1/account", "AccountRetrieveCurrentParams")
def retrieve_current(ctx: Ctx, p: Obj) -> Obj:
    return ctx.sb.render(_get_account(ctx, ctx.account or ctx.sb.platform_id))


@route("GET", "/v1/accounts/{account_id}", "AccountRetrieveParams")
def retrieve_account(ctx: Ctx, p: Obj, account_id: str) -> Obj:
    return ctx.sb.render(_get_account(ctx, account_id))


@route("POST", "/v1/accounts/{account_id}", "AccountUpdateParams")
def update_account(ctx: Ctx, p: Obj, account_id: str) -> Obj:
    sb = ctx.sb
    acct = _get_account(ctx, account_id)
    before = sb.render(acct)
    for field in ("business_type", "email", "default_currency"):
        if field in p:
            acct[field] = p[field] or None
    if "business_profile" in p:
        acct["business_profile"].update(p["business_profile"])
    if "tos_acceptance" in p:
        acct["tos_acceptance"].update(p["tos_acceptance"])
    if "settings" in p:
        for k, v in p["settings"].items():
            if isinstance(v, dict) and isinstance(acct["settings"].get(k), dict):
                _deep_update(acct["settings"][k], v)
    apply_metadata(acct, p.get("metadata"))
    changed = _apply_capabilities(sb, acct, p.get("capabilities") or {})
    if p.get("external_account"):
        _bank_account(sb, acct, p["external_account"])
    emit_account_updated(sb, ctx, acct, before)
    for name in changed:
        _emit_capability(sb, ctx, acct, name, None)
    return sb.render(acct)


def _deep_update(dst: Obj, src: Obj) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_update(dst[k], v)
        else:
            dst[k] = v


@route("GET", "/v1/accounts", "AccountListParams")
def list_accounts(ctx: Ctx, p: Obj) -> Obj:
    sb = ctx.sb
    items = [
        a
        for a in sb.objects_of("account", None)
        if not a.get("_platform") and not a.get("_deauthorized")
    ]
    if ctx.account is not None:
        items = []
    items = created_filter(items, p.get("created"))
    return sb.paginate(ctx, items, p, "/v1/accounts")


@route("DELETE", "/v1/accounts/{account_id}", "AccountDeleteParams")
def delete_account(ctx: Ctx, p: Obj, account_id: str) -> Obj:
    acct = _get_account(ctx, account_id)
    if acct.get("_platform"):
        raise invalid("You cannot delete your own account through the API.")
    acct["_deleted"] = True
    return {"id": acct["id"], "object": "account", "deleted": True}


# ---------------------------------------------------------------- capabilities
def _emit_capability(
    sb: Sandbox, ctx: Ctx | None, acct: Obj, name: str, prev_status: str | None
) -> None:
    obj = _render_capability(sb, acct, name)
    prev = {"status": prev_status} if prev_status and prev_status != obj["status"] else None
    fake = {"_owner": acct["id"]}
    sb.emit(ctx, "capability.updated", fake, prev, owner=acct["id"], data_object=obj)


@route("GET", "/v1/accounts/{account_id}/capabilities", "AccountCapabilityListParams")
def list_capabilities(ctx: Ctx, p: Obj, account_id: str) -> Obj:
    acct = _get_account(ctx, account_id)
    data = [_render_capability(ctx.sb, acct, n) for n in sorted(acct["_caps"])]
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "url": f"/v1/accounts/{account_id}/capabilities",
    }


def _cap(ctx: Ctx, acct: Obj, capability: str) -> None:
    if capability not in acct["_caps"]:
        raise no_such("capability", capability, "capability")


@route(
    "GET",
    "/v1/accounts/{account_id}/capabilities/{capability}",
    "AccountCapabilityRetrieveParams",
)
def retrieve_capability(ctx: Ctx, p: Obj, account_id: str, capability: str) -> Obj:
    acct = _get_account(ctx, account_id)
    _cap(ctx, acct, capability)
    return _render_capability(ctx.sb, acct, capability)


@route(
    "POST",
    "/v1/accounts/{account_id}/capabilities/{capability}",
    "AccountCapabilityUpdateParams",
)
def update_capability(ctx: Ctx, p: Obj, account_id: str, capability: str) -> Obj:
    sb = ctx.sb
    acct = _get_account(ctx, account_id)
    before = sb.render(acct)
    if "requested" in p:
        prev = acct["_caps"].get(capability, {}).get("status")
        if _apply_capabilities(sb, acct, {capability: {"requested": p["requested"]}}):
            emit_account_updated(sb, ctx, acct, before)
            _emit_capability(sb, ctx, acct, capability, prev)
    _cap(ctx, acct, capability)
    return _render_capability(sb, acct, capability)


# ---------------------------------------------------------------- links & sessions
@route("POST", "/v1/account_links", "AccountLinkCreateParams")
def create_account_link(ctx: Ctx, p: Obj) -> Obj:
    sb = ctx.sb
    for key in ("account", "type", "refresh_url", "return_url"):
        if key not in p:
            raise invalid(f"Missing required param: {key}.", param=key)
    acct = sb.find(p["account"], "account")
    if acct is None or acct.get("_platform") or acct.get("_deauthorized"):
        raise no_such("account", p["account"], "account")
    if p["type"] == "account_update" and acct["controller"].get("stripe_dashboard", {}).get(
        "type"
    ) in ("express", "full"):
        raise invalid(
            "You cannot create `account_update` type Account Links for accounts with access "
            "to the Stripe Dashboard.",
            param="type",
        )
    token = sb.ids.token(24)
    link = {
        "object": "account_link",
        "created": sb.now(),
        "expires_at": sb.now() + sb.account_link_ttl,
        "url": f"{sb.base_url}/_sandbox/account_links/{token}",
    }
    sb.objects["alink_" + token] = {
        "id": "alink_" + token,
        "object": "_account_link",
        "_owner": None,
        "_seq": 0,
        "created": sb.now(),
        "account": acct["id"],
        "type": p["type"],
        "expires_at": link["expires_at"],
        "refresh_url": p["refresh_url"],
        "return_url": p["return_url"],
        "used": False,
    }
    return link


def follow_account_link(sb: Sandbox, url_or_token: str, complete: bool = True) -> str:
    """Visit an account link as the account holder would. Returns the redirect URL.

    A fresh, unused link finishes onboarding (when ``complete``) and redirects to
    ``return_url``; an expired or already used link redirects to ``refresh_url``.
    """
    token = url_or_token.rstrip("/").rsplit("/", 1)[-1]
    link = sb.objects.get("alink_" + token)
    if link is None:
        raise SandboxError(f"unknown account link: {url_or_token}")
    if link["used"] or sb.now() >= link["expires_at"]:
        return str(link["refresh_url"])
    link["used"] = True
    if complete:
        complete_onboarding(sb, link["account"])
    return str(link["return_url"])


@route("POST", "/v1/account_sessions", "AccountSessionCreateParams")
def create_account_session(ctx: Ctx, p: Obj) -> Obj:
    sb = ctx.sb
    acct = sb.find(p["account"], "account")
    if acct is None or acct.get("_platform") or acct.get("_deauthorized"):
        raise no_such("account", p["account"], "account")
    components: Obj = {}
    for name, spec in (p.get("components") or {}).items():
        components[name] = {
            "enabled": bool(spec.get("enabled")),
            "features": copy.deepcopy(spec.get("features") or {}),
        }
    out = template("account_session")
    out.update(
        account=acct["id"],
        client_secret=f"accs_secret__{sb.ids.token(40)}",
        components=components,
        expires_at=sb.now() + 3600,
        livemode=False,
    )
    return out


@route("POST", "/v1/accounts/{account_id}/login_links", "AccountLoginLinkCreateParams")
def create_login_link(ctx: Ctx, p: Obj, account_id: str) -> Obj:
    sb = ctx.sb
    acct = _get_account(ctx, account_id)
    if acct["controller"].get("stripe_dashboard", {}).get("type") != "express":
        raise invalid(
            "Cannot create a login link for an account that does not have access to the "
            "Express Dashboard.",
            param="account",
        )
    if not acct.get("details_submitted"):
        raise invalid(
            "Cannot create a login link for an account that has not completed onboarding.",
            param="account",
        )
    return {
        "object": "login_link",
        "created": sb.now(),
        "url": f"https://connect.stripe.com/express/{sb.ids.token(12)}",
    }


@route("GET", "/v1/accounts/{account_id}/external_accounts", "AccountExternalAccountListParams")
def list_external_accounts(ctx: Ctx, p: Obj, account_id: str) -> Obj:
    acct = _get_account(ctx, account_id)
    return ctx.sb.paginate(
        ctx,
        ctx.sb.objects_of("bank_account", acct["id"]),
        p,
        f"/v1/accounts/{account_id}/external_accounts",
    )


# ---------------------------------------------------------------- control
def complete_onboarding(sb: Sandbox, account_id: str) -> Obj:
    acct = sb.must(account_id, "account")
    before = sb.render(acct)
    prev_caps = {k: v["status"] for k, v in acct["_caps"].items()}
    acct["requirements"] = _requirements([], [], None)
    acct["details_submitted"] = True
    acct["charges_enabled"] = True
    acct["payouts_enabled"] = True
    if not acct["tos_acceptance"].get("date"):
        acct["tos_acceptance"].update(date=sb.now(), ip="127.0.0.1")
    if acct.get("business_type") is None:
        acct["business_type"] = "individual"
    created_bank = None
    if not sb.objects_of("bank_account", acct["id"]):
        created_bank = _bank_account(sb, acct, None)
    for cap in acct["_caps"].values():
        if cap["requested"]:
            cap["status"] = "active"
    _sync_account(acct)
    if created_bank is not None:
        sb.emit(None, "account.external_account.created", created_bank, owner=acct["id"])
    emit_account_updated(sb, None, acct, before)
    for name, cap in acct["_caps"].items():
        if cap["status"] != prev_caps.get(name):
            _emit_capability(sb, None, acct, name, prev_caps.get(name))
    return sb.render(acct)


def require_information(
    sb: Sandbox,
    account_id: str,
    fields: list[str] | None = None,
    past_due: bool = False,
    deadline: int | None = None,
) -> Obj:
    acct = sb.must(account_id, "account")
    fields = list(fields or ["individual.verification.document"])
    before = sb.render(acct)
    prev_caps = {k: v["status"] for k, v in acct["_caps"].items()}
    req = acct["requirements"]
    due = sorted(set(req["currently_due"]) | set(fields))
    if past_due:
        acct["requirements"] = _requirements(due, sorted(set(req["past_due"]) | set(fields)), None)
        acct["charges_enabled"] = False
        acct["payouts_enabled"] = False
        for cap in acct["_caps"].values():
            if cap["status"] == "active":
                cap["status"] = "inactive"
        _sync_account(acct)
    else:
        dl = deadline if deadline is not None else sb.now() + sb.requirements_deadline_days * 86400
        acct["requirements"] = _requirements(due, list(req["past_due"]), dl)
        sb.schedule(dl, "requirements_deadline", account_id=acct["id"], deadline=dl)
    emit_account_updated(sb, None, acct, before)
    for name, cap in acct["_caps"].items():
        if cap["status"] != prev_caps.get(name):
            _emit_capability(sb, None, acct, name, prev_caps.get(name))
    return sb.render(acct)


@task("requirements_deadline")
def _deadline_passed(sb: Sandbox, account_id: str, deadline: int) -> None:
    acct = sb.find(account_id, "account")
    if acct is None or acct["requirements"]["current_deadline"] != deadline:
        return
    if not acct["requirements"]["currently_due"]:
        return
    require_information(sb, account_id, list(acct["requirements"]["currently_due"]), past_due=True)


def deauthorize(sb: Sandbox, account_id: str) -> None:
    acct = sb.must(account_id, "account")
    application = {"id": "ca_" + sb.ids.token(24), "object": "application", "name": "Sandbox"}
    sb.emit(
        None,
        "account.application.deauthorized",
        acct,
        owner=acct["id"],
        data_object=application,
    )
    acct["_deauthorized"] = True


def payout_failure_code(sb: Sandbox, account_id: str | None) -> str | None:
    if account_id is None:
        return None
    for ba in sb.objects_of("bank_account", account_id):
        if ba.get("default_for_currency"):
            return FAILING_ACCOUNT_NUMBERS.get(ba.get("_account_number", ""))
    return None


def default_bank(sb: Sandbox, account_id: str | None) -> str | None:
    for ba in sb.objects_of("bank_account", account_id):
        if ba.get("default_for_currency"):
            return str(ba["id"])
    return None
