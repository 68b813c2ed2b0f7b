"""Sellers list, edit and withdraw auctions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from gavel.auctions.engine import IncrementTableError, increment_table_validate
from gavel.auctions.live import auction_event_publish_on_commit
from gavel.auctions.lock_objects import auction_lock
from gavel.auctions.models import Auction
from gavel.auctions.policies import seller_can_list
from gavel.auctions.selectors import auction_public_state
from gavel.auctions.states import history_record, status_transition
from gavel.common.errors import ConflictError, NotFoundError, ServiceError
from gavel.common.money import MoneyError, currency_normalize
from gavel.users.models import User

EDITABLE_FIELDS = frozenset(
    {
        "title",
        "description",
        "category",
        "image_urls",
        "currency",
        "starts_at",
        "ends_at",
        "starting_price_minor",
        "reserve_price_minor",
        "buy_now_price_minor",
        "increment_table",
        "soft_close_seconds",
        "soft_close_style",
        "hold_policy",
        "hold_threshold_minor",
    }
)


@dataclass(frozen=True, slots=True)
class _Terms:
    currency: str
    starts_at: datetime
    ends_at: datetime
    starting_price_minor: int
    reserve_price_minor: int | None
    buy_now_price_minor: int | None
    increment_table: list[list[int]]
    soft_close_seconds: int
    soft_close_style: str
    hold_policy: str
    hold_threshold_minor: int | None


def _invalid(field: str, message: str) -> ServiceError:
    return ServiceError(message, code="invalid_auction_terms", fields={field: [message]})


def _terms_validate(values: dict[str, Any], *, now: datetime, is_new: bool) -> _Terms:
    try:
        currency = currency_normalize(values["currency"])
    except MoneyError as error:
        raise _invalid("currency", str(error)) from error
    starts_at: datetime = values["starts_at"]
    ends_at: datetime = values["ends_at"]
    if ends_at <= starts_at:
        raise _invalid("ends_at", "The end must be after the start.")
    if ends_at <= now:
        raise _invalid("ends_at", "The end must be in the future.")
    if is_new and starts_at < now - timedelta(minutes=5):
        raise _invalid("starts_at", "The start must not be in the past.")
    starting: int = values["starting_price_minor"]
    reserve: int | None = values.get("reserve_price_minor")
    buy_now: int | None = values.get("buy_now_price_minor")
    if starting <= 0:
        raise _invalid("starting_price_minor", "The starting price must be positive.")
    if reserve is not None and reserve < starting:
        raise _invalid("reserve_price_minor", "The reserve must be at least the starting price.")
    if buy_now is not None and buy_now <= max(starting, reserve or 0):
        raise _invalid(
            "buy_now_price_minor",
            "The buy-now price must be above the starting price and the reserve.",
        )
    table_rows = values.get("increment_table") or settings.AUCTIONS_DEFAULT_INCREMENT_TABLE
    try:
        table = increment_table_validate(table_rows)
    except IncrementTableError as error:
        raise _invalid("increment_table", str(error)) from error
    soft_close_seconds = values.get("soft_close_seconds")
    if soft_close_seconds is None:
        soft_close_seconds = settings.AUCTIONS_SOFT_CLOSE_SECONDS
    if soft_close_seconds < 0:
        raise _invalid("soft_close_seconds", "Must not be negative.")
    style = values.get("soft_close_style") or settings.AUCTIONS_SOFT_CLOSE_STYLE
    if style not in Auction.SoftCloseStyle.values:
        raise _invalid("soft_close_style", f"One of {', '.join(Auction.SoftCloseStyle.values)}.")
    hold_policy = values.get("hold_policy") or Auction.HoldPolicy.NONE
    if hold_policy not in Auction.HoldPolicy.values:
        raise _invalid("hold_policy", f"One of {', '.join(Auction.HoldPolicy.values)}.")
    hold_threshold = values.get("hold_threshold_minor")
    if hold_policy != Auction.HoldPolicy.NONE and hold_threshold is None:
        hold_threshold = settings.AUCTIONS_HOLD_THRESHOLD_MINOR
    if hold_threshold is not None and hold_threshold < 0:
        raise _invalid("hold_threshold_minor", "Must not be negative.")
    return _Terms(
        currency=currency,
        starts_at=starts_at,
        ends_at=ends_at,
        starting_price_minor=starting,
        reserve_price_minor=reserve,
        buy_now_price_minor=buy_now,
        increment_table=[list(row) for row in table],
        soft_close_seconds=soft_close_seconds,
        soft_close_style=style,
        hold_policy=hold_policy,
        hold_threshold_minor=hold_threshold,
    )


def _require_seller(user: User) -> None:
    allowed, reason = seller_can_list(user=user)
    if not allowed:
        raise ServiceError(reason, code="seller_not_allowed", status_code=403)


def auction_create(
    *,
    seller: User,
    title: str,
    category: str,
    currency: str,
    starts_at: datetime,
    ends_at: datetime,
    starting_price_minor: int,
    description: str = "",
    image_urls: Sequence[str] = (),
    reserve_price_minor: int | None = None,
    buy_now_price_minor: int | None = None,
    increment_table: Sequence[Sequence[int]] | None = None,
    soft_close_seconds: int | None = None,
    soft_close_style: str | None = None,
    hold_policy: str | None = None,
    hold_threshold_minor: int | None = None,
    now: datetime | None = None,
) -> Auction:
    """List an item for auction. Missing terms take the settings' defaults."""
    now = now or timezone.now()
    _require_seller(seller)
    terms = _terms_validate(
        {
            "currency": currency,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "starting_price_minor": starting_price_minor,
            "reserve_price_minor": reserve_price_minor,
            "buy_now_price_minor": buy_now_price_minor,
            "increment_table": increment_table,
            "soft_close_seconds": soft_close_seconds,
            "soft_close_style": soft_close_style,
            "hold_policy": hold_policy,
            "hold_threshold_minor": hold_threshold_minor,
        },
        now=now,
        is_new=True,
    )
    with transaction.atomic():
        auction = Auction.objects.create(
            seller=seller,
            title=title,
            description=description,
            category=category,
            image_urls=list(image_urls),
            scheduled_ends_at=terms.ends_at,
            price_minor=terms.starting_price_minor,
            **{field: getattr(terms, field) for field in _Terms.__slots__},
        )
        history_record(instance=auction, from_status="", to_status=auction.status, reason="listed")
    return auction


def _auction_locked(auction_id: int) -> Auction:
    auction = auction_lock(auction_id=auction_id).first()
    if auction is None:
        raise NotFoundError("No such auction.", code="auction_not_found")
    return auction


def _require_editable(auction: Auction, user: User) -> None:
    if auction.seller_id != user.pk and not user.is_staff:
        raise ServiceError(
            "Only the seller may change this auction.", code="not_your_auction", status_code=403
        )
    if auction.status != Auction.Status.ACTIVE:
        raise ConflictError("This auction has ended.", code="auction_closed")
    if auction.bid_count > 0:
        raise ConflictError(
            "An auction cannot change after its first bid.", code="auction_has_bids"
        )


def auction_update(
    *, auction_id: int, user: User, changes: dict[str, Any], now: datetime | None = None
) -> Auction:
    """Edit a listing; refused once the first bid is in."""
    now = now or timezone.now()
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ServiceError(
            "These fields cannot be changed.",
            code="not_editable",
            fields={name: ["Not editable."] for name in sorted(unknown)},
        )
    with transaction.atomic():
        auction = _auction_locked(auction_id)
        _require_editable(auction, user)
        current = {field: getattr(auction, field) for field in EDITABLE_FIELDS}
        merged = {**current, **changes}
        terms = _terms_validate(merged, now=now, is_new=False)
        for field in ("title", "description", "category"):
            setattr(auction, field, merged[field])
        auction.image_urls = list(merged["image_urls"])
        for field in _Terms.__slots__:
            setattr(auction, field, getattr(terms, field))
        auction.scheduled_ends_at = terms.ends_at
        auction.price_minor = terms.starting_price_minor
        auction.close_scheduled_for = None
        auction.version = F("version") + 1
        auction.save()
        auction.refresh_from_db()
        auction_event_publish_on_commit(
            auction_id=auction.pk,
            event_type="updated",
            data=auction_public_state(auction).as_event(auction.pk),
        )
    return auction


def auction_cancel(*, auction_id: int, user: User) -> Auction:
    """Withdraw a listing before its first bid."""
    with transaction.atomic():
        auction = _auction_locked(auction_id)
        _require_editable(auction, user)
        auction.outcome = Auction.Outcome.CANCELLED
        auction.closed_at = timezone.now()
        auction.version = F("version") + 1
        status_transition(
            instance=auction,
            to_status=Auction.Status.CANCELLED,
            reason="withdrawn by seller",
            fields=["outcome", "closed_at", "version"],
        )
        auction.refresh_from_db()
        auction_event_publish_on_commit(
            auction_id=auction.pk,
            event_type="closed",
            data={"auction_id": auction.pk, "status": auction.status, "version": auction.version},
        )
    return auction
