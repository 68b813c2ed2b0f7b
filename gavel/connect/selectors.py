"""Reading sellers' Connect state. Auctions and payments call ``seller_selling_status``,
``seller_can_list``, ``seller_payouts_allowed``, ``seller_transfers_allowed`` and
``seller_account_id``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet

from gavel.connect.models import ConnectedAccount, ConnectedAccountChange
from gavel.connect.requirements import disabled_reason_sentence, requirements_explain
from gavel.connect.states import AccountStatus
from gavel.ledger.accounts import seller_payable
from gavel.users.models import User

DASHBOARD_BASE_URL = "https://dashboard.stripe.com/"

KEEP_SELLING = "keep_selling"
STOP_SELLING = "stop_selling"


@dataclass(frozen=True, slots=True)
class SellingStatus:
    """What a seller may do now and, when something is missing, why, in plain words.

    ``can_list``: may list new items. ``transfers_allowed``: Gavel may transfer sale proceeds
    into the seller's Stripe balance (``transfers`` active). ``payouts_allowed``: the money may
    also leave for the seller's bank (transfers allowed and Stripe's ``payouts_enabled``); when
    False, payments and payouts hold the money and the auction goes on. ``code`` is stable for
    the apps; ``message`` is for the seller.
    """

    can_list: bool
    payouts_allowed: bool
    code: str
    message: str
    due_by: datetime | None = None
    transfers_allowed: bool = False


def connected_account_for_user(*, user: User) -> ConnectedAccount | None:
    return ConnectedAccount.objects.filter(user=user).first()


def connected_account_list() -> QuerySet[ConnectedAccount]:
    return ConnectedAccount.objects.select_related("user").order_by("-id")


def connected_account_history(*, account: ConnectedAccount) -> QuerySet[ConnectedAccountChange]:
    return account.changes.order_by("-id")


def seller_account_id(*, user: User) -> str | None:
    """The seller's Stripe account id (``acct_...``), or None if they have none yet."""
    return (
        ConnectedAccount.objects.filter(user=user)
        .exclude(status=AccountStatus.DEAUTHORIZED)
        .values_list("stripe_account_id", flat=True)
        .first()
    )


def seller_payable_ledger_code(*, stripe_account_id: str) -> str:
    """The ledger account (a liability) of what Gavel owes this seller:
    ``seller_payable:<acct id>``, as ``gavel.ledger.accounts.seller_payable`` names it."""
    return seller_payable(stripe_account_id).code


def stripe_dashboard_url(*, account: ConnectedAccount) -> str:
    if not account.stripe_account_id:
        return ""
    mode = "" if account.livemode else "test/"
    return f"{DASHBOARD_BASE_URL}{mode}connect/accounts/{account.stripe_account_id}"


def _capabilities_active(account: ConnectedAccount) -> bool:
    required: list[str] = settings.CONNECT_REQUIRED_CAPABILITIES
    return all(account.capabilities.get(name) == "active" for name in required)


def _first_requirements(keys: list[str], *, limit: int = 3) -> str:
    items = requirements_explain(keys)
    text = " ".join(item.message for item in items[:limit])
    if len(items) > limit:
        text += f" (and {len(items) - limit} more)"
    return text


def _sentence(text: str) -> str:
    return text if text.endswith(".") else f"{text}."


def _date(value: datetime) -> str:
    return value.strftime("%d %B %Y")


def _refused(
    code: str, message: str, *, payouts_allowed: bool, transfers_allowed: bool = False
) -> SellingStatus:
    return SellingStatus(
        can_list=False,
        code=code,
        message=message,
        payouts_allowed=payouts_allowed,
        transfers_allowed=transfers_allowed,
    )


def account_selling_status(*, account: ConnectedAccount | None) -> SellingStatus:
    """The rules, applied to one account (None: the user never started onboarding)."""
    if account is None:
        return _refused(
            "not_onboarded",
            "Become a seller first: set up your Stripe account.",
            payouts_allowed=False,
        )
    status = account.status
    if status == AccountStatus.CREATING:
        return _refused(
            "account_pending",
            "Your Stripe account is still being created; tap “Become a seller” again.",
            payouts_allowed=False,
        )
    if status == AccountStatus.UNSYNCED:
        return _refused(
            "account_unsynced",
            "Gavel is reading your Stripe account; try again in a minute.",
            payouts_allowed=False,
        )
    if status == AccountStatus.DEAUTHORIZED:
        return _refused(
            "deauthorized",
            "You disconnected your Stripe account from Gavel; contact support to sell again.",
            payouts_allowed=False,
        )
    transfers_allowed = account.capabilities.get("transfers") == "active"
    payouts_allowed = transfers_allowed and account.payouts_enabled
    if status == AccountStatus.REJECTED:
        return _refused(
            "rejected",
            disabled_reason_sentence(account.disabled_reason),
            payouts_allowed=payouts_allowed,
            transfers_allowed=transfers_allowed,
        )
    if status == AccountStatus.ONBOARDING:
        return _refused(
            "onboarding_incomplete",
            "Finish setting up your Stripe account: "
            + _first_requirements(account.requirements_currently_due),
            payouts_allowed=payouts_allowed,
            transfers_allowed=transfers_allowed,
        )
    if account.requirements_past_due:
        return _refused(
            "requirements_past_due",
            "Stripe paused selling until you provide: "
            + _first_requirements(account.requirements_past_due),
            payouts_allowed=payouts_allowed,
            transfers_allowed=transfers_allowed,
        )
    if not account.charges_enabled or not _capabilities_active(account):
        message = disabled_reason_sentence(account.disabled_reason) or (
            "Stripe has not enabled card payments and transfers for your account yet."
        )
        return _refused(
            "capabilities_inactive",
            message,
            payouts_allowed=payouts_allowed,
            transfers_allowed=transfers_allowed,
        )
    if not account.payouts_enabled:
        what = _first_requirements(account.requirements_currently_due)
        paused = _sentence(
            "Stripe paused payouts to your bank" + (f" until you provide: {what}" if what else "")
        )
        if settings.CONNECT_PAYOUTS_DISABLED_POLICY == STOP_SELLING:
            return _refused(
                "payouts_disabled",
                f"{paused} You can list again once payouts resume.",
                payouts_allowed=payouts_allowed,
                transfers_allowed=transfers_allowed,
            )
        return SellingStatus(
            can_list=True,
            code="payouts_paused",
            message=f"You can keep selling. {paused} Your earnings wait until payouts resume.",
            payouts_allowed=payouts_allowed,
            transfers_allowed=transfers_allowed,
        )
    if account.requirements_currently_due:
        deadline = account.requirements_deadline
        by = f" by {_date(deadline)}" if deadline else ""
        return SellingStatus(
            can_list=True,
            code="requirements_due",
            message=f"Provide{by} to keep selling: "
            + _first_requirements(account.requirements_currently_due),
            due_by=deadline,
            payouts_allowed=payouts_allowed,
            transfers_allowed=transfers_allowed,
        )
    return SellingStatus(
        can_list=True,
        code="ok",
        message="",
        payouts_allowed=payouts_allowed,
        transfers_allowed=transfers_allowed,
    )


def seller_selling_status(*, user: User) -> SellingStatus:
    return account_selling_status(account=connected_account_for_user(user=user))


def seller_can_list(*, user: User) -> tuple[bool, str]:
    """The auctions seam (``gavel.auctions.policies.seller_can_list``)."""
    status = seller_selling_status(user=user)
    return status.can_list, status.message


def seller_payouts_allowed(*, user: User) -> bool:
    """Whether the seller's money may go all the way to their bank now (transfers active and
    Stripe payouts enabled); if not, the payout waits and the auction goes on."""
    return seller_selling_status(user=user).payouts_allowed


def seller_transfers_allowed(*, user: User) -> bool:
    """Whether Gavel may transfer sale proceeds into the seller's Stripe balance now."""
    return seller_selling_status(user=user).transfers_allowed
