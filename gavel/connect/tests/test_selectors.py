"""The selling rules and plain-word requirements, on unsaved records (no Stripe needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gavel.connect.models import ConnectedAccount
from gavel.connect.requirements import (
    disabled_reason_sentence,
    requirement_sentence,
    requirements_explain,
)
from gavel.connect.selectors import account_selling_status, seller_payable_ledger_code
from gavel.connect.states import AccountStatus, status_derive, status_move_allowed

ACTIVE = {"card_payments": "active", "transfers": "active"}


def enabled(**overrides: Any) -> ConnectedAccount:
    values: dict[str, Any] = {
        "preset": "express",
        "stripe_account_id": "acct_1",
        "status": AccountStatus.ENABLED,
        "charges_enabled": True,
        "payouts_enabled": True,
        "details_submitted": True,
        "capabilities": dict(ACTIVE),
    }
    values.update(overrides)
    return ConnectedAccount(**values)


def test_enabled_seller_may_list_and_be_paid() -> None:
    status = account_selling_status(account=enabled())

    assert (status.can_list, status.payouts_allowed, status.code, status.message) == (
        True,
        True,
        "ok",
        "",
    )


def test_no_account_may_not_list() -> None:
    status = account_selling_status(account=None)

    assert (status.can_list, status.code) == (False, "not_onboarded")


@pytest.mark.parametrize(
    ("capabilities", "charges_enabled"),
    [
        ({"card_payments": "active", "transfers": "inactive"}, True),
        ({"card_payments": "pending", "transfers": "active"}, True),
        ({"card_payments": "active"}, True),
        (ACTIVE, False),
    ],
)
def test_listing_needs_card_payments_and_transfers_active(
    capabilities: dict[str, str], charges_enabled: bool
) -> None:
    account = enabled(
        status=AccountStatus.RESTRICTED,
        capabilities=capabilities,
        charges_enabled=charges_enabled,
    )

    status = account_selling_status(account=account)

    assert (status.can_list, status.code) == (False, "capabilities_inactive")
    assert status.transfers_allowed is (capabilities.get("transfers") == "active")
    assert status.payouts_allowed is (capabilities.get("transfers") == "active")
    assert (
        status.message == "Stripe has not enabled card payments and transfers for your account yet."
    )


def test_disabled_reason_is_explained_when_capabilities_are_held() -> None:
    account = enabled(
        status=AccountStatus.RESTRICTED,
        capabilities={"card_payments": "pending", "transfers": "pending"},
        disabled_reason="under_review",
    )

    assert account_selling_status(account=account).message == "Stripe is reviewing your account."


def test_payouts_disabled_keep_selling_policy(settings: Any) -> None:
    settings.CONNECT_PAYOUTS_DISABLED_POLICY = "keep_selling"
    account = enabled(payouts_enabled=False, requirements_currently_due=["external_account"])

    status = account_selling_status(account=account)

    assert (status.can_list, status.transfers_allowed, status.payouts_allowed, status.code) == (
        True,
        True,
        False,
        "payouts_paused",
    )
    assert status.message == (
        "You can keep selling. Stripe paused payouts to your bank until you provide: "
        "Add the bank account your payouts go to. Your earnings wait until payouts resume."
    )


def test_payouts_disabled_stop_selling_policy(settings: Any) -> None:
    settings.CONNECT_PAYOUTS_DISABLED_POLICY = "stop_selling"
    account = enabled(payouts_enabled=False)

    status = account_selling_status(account=account)

    assert (status.can_list, status.code) == (False, "payouts_disabled")
    assert status.message == (
        "Stripe paused payouts to your bank. You can list again once payouts resume."
    )


def test_requirements_due_with_a_deadline_still_sell() -> None:
    deadline = datetime(2026, 12, 24, tzinfo=UTC)
    account = enabled(requirements_currently_due=["company.tax_id"], requirements_deadline=deadline)

    status = account_selling_status(account=account)

    assert (status.can_list, status.code, status.due_by) == (True, "requirements_due", deadline)
    assert status.message == (
        "Provide by 24 December 2026 to keep selling: Give your company's tax ID."
    )


def test_rejected_and_creating_and_deauthorized() -> None:
    rejected = account_selling_status(
        account=enabled(status=AccountStatus.REJECTED, disabled_reason="rejected.fraud")
    )
    creating = account_selling_status(account=enabled(status=AccountStatus.CREATING))
    gone = account_selling_status(account=enabled(status=AccountStatus.DEAUTHORIZED))

    assert (rejected.can_list, rejected.code) == (False, "rejected")
    assert rejected.message == "Stripe rejected your account (suspected fraud); contact support."
    assert (creating.can_list, creating.payouts_allowed, creating.code) == (
        False,
        False,
        "account_pending",
    )
    assert (gone.can_list, gone.payouts_allowed, gone.code) == (False, False, "deauthorized")


@pytest.mark.parametrize(
    ("key", "sentence"),
    [
        ("individual.dob.day", "Give your date of birth."),
        ("individual.verification.document", "Give your identity document (a photo of an ID)."),
        ("representative.first_name", "Give your company representative's full name."),
        ("person_1Nabc.address.city", "Give a company person's home address."),
        ("owners.email", "Give each owner's email address."),
        ("external_account", "Add the bank account your payouts go to."),
        ("tos_acceptance.date", "Accept Stripe's services agreement."),
        ("business_profile.mcc", "Choose the category of goods you sell."),
        ("company.address.line1", "Give your company's registered address."),
        ("company.something_new", "Complete your company's details."),
        (
            "individual.favourite_colour",
            "Stripe needs more information "
            "(individual.favourite_colour); open your Stripe onboarding to add it.",
        ),
        (
            "brand_new_key",
            "Stripe needs more information (brand_new_key); open your Stripe onboarding to add it.",
        ),
    ],
)
def test_requirement_keys_in_plain_words(key: str, sentence: str) -> None:
    assert requirement_sentence(key) == sentence


def test_requirements_are_grouped_by_sentence_in_stripes_order() -> None:
    items = requirements_explain(["tos_acceptance.date", "external_account", "tos_acceptance.ip"])

    assert [(item.message, item.keys) for item in items] == [
        ("Accept Stripe's services agreement.", ("tos_acceptance.date", "tos_acceptance.ip")),
        ("Add the bank account your payouts go to.", ("external_account",)),
    ]


def test_disabled_reasons_in_plain_words() -> None:
    assert disabled_reason_sentence("") == ""
    assert disabled_reason_sentence("rejected.something_new") == (
        "Stripe rejected your account; contact support."
    )
    assert disabled_reason_sentence("paused.inactivity") == (
        "Stripe restricted your account (paused.inactivity)."
    )


def test_status_is_derived_from_stripes_state() -> None:
    required = ["card_payments", "transfers"]
    derive: dict[str, Any] = {
        "details_submitted": True,
        "charges_enabled": True,
        "capabilities": ACTIVE,
        "required_capabilities": required,
        "disabled_reason": "",
    }

    assert status_derive(**derive) == AccountStatus.ENABLED
    assert status_derive(**{**derive, "charges_enabled": False}) == AccountStatus.RESTRICTED
    assert (
        status_derive(**{**derive, "charges_enabled": False, "details_submitted": False})
        == AccountStatus.ONBOARDING
    )
    assert status_derive(**{**derive, "disabled_reason": "rejected.fraud"}) == (
        AccountStatus.REJECTED
    )


def test_transitions() -> None:
    assert status_move_allowed(current="enabled", target="enabled")
    assert status_move_allowed(current="creating", target="enabled")
    assert not status_move_allowed(current="enabled", target="creating")
    assert not status_move_allowed(current="deauthorized", target="enabled")


def test_ledger_code_convention() -> None:
    assert seller_payable_ledger_code(stripe_account_id="acct_123") == "seller_payable:acct_123"
