"""Seams other apps fill: who may sell (Connect) and bid holds (payments).

Each function's signature is the contract; its owner replaces only the body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from django.apps import apps
from django.utils.module_loading import import_string

from gavel.users.models import User

if TYPE_CHECKING:
    from gavel.auctions.models import Auction


def seller_can_list(*, user: User) -> tuple[bool, str]:
    """Whether ``user`` may list an item now, and if not, why (shown to the seller).

    Owned by the Connect issue: until ``gavel.connect`` is installed, any user flagged
    ``is_seller`` may list; once it is, its ``selectors.seller_can_list`` decides.
    """
    if not user.is_seller:
        return False, "Only sellers may list items."
    if apps.is_installed("gavel.connect"):
        try:
            selector = import_string("gavel.connect.selectors.seller_can_list")
        except ImportError:
            return True, ""
        return cast(Callable[..., tuple[bool, str]], selector)(user=user)
    return True, ""


def bidder_hold_required(*, auction: Auction, amount_minor: int) -> bool:
    """Whether a maximum of ``amount_minor`` needs a hold or deposit first (auction policy)."""
    if auction.hold_policy == auction.HoldPolicy.NONE or auction.hold_threshold_minor is None:
        return False
    return amount_minor > auction.hold_threshold_minor


def bidder_hold_satisfied(*, auction: Auction, user: User, amount_minor: int) -> bool:
    """Whether ``user`` holds the authorization or deposit ``auction.hold_policy`` asks for a
    maximum of ``amount_minor``. Called only when ``bidder_hold_required`` is true.

    Owned by the payments issue: an authorized, unexpired hold (or deposit) of the bidder on
    this auction covering the maximum (gavel.payments.services.holds).
    """
    from gavel.payments.services.holds import hold_satisfied

    return hold_satisfied(auction=auction, user=user, amount_minor=amount_minor)
