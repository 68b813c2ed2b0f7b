"""Auctions API: one view per operation, each calling one service or selector."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from gavel.auctions.live import auction_event_stream
from gavel.auctions.models import (
    Auction,
    Bid,
    PaymentMethodSetup,
    Sale,
    SecondChanceOffer,
    VerifiedPaymentMethod,
)
from gavel.auctions.selectors import (
    auction_get,
    auction_list,
    auction_public_state,
    auction_stream_snapshot,
    bid_history,
    bids_of_user,
    offers_visible_to,
    sale_get,
    sales_visible_to,
    verified_payment_methods,
)
from gavel.auctions.services.bidding import auction_buy_now, bid_place
from gavel.auctions.services.eligibility import (
    SetupView,
    payment_method_setup_create,
    payment_method_setup_refresh,
)
from gavel.auctions.services.listing import auction_cancel, auction_create, auction_update
from gavel.auctions.services.sales import (
    second_chance_offer_accept,
    second_chance_offer_decline,
)
from gavel.common.api import GavelAPIView, request_user
from gavel.common.errors import ServiceError
from gavel.common.pagination import CursorPagination
from gavel.common.serializers import MinorUnitsField, StrictSerializer
from gavel.users.models import User
from gavel.users.permissions import IsSeller


def _forbidden(message: str, code: str) -> ServiceError:
    return ServiceError(message, code=code, status_code=status.HTTP_403_FORBIDDEN)


def _etag_matches(request: Request, etag: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    candidates = {item.strip().removeprefix("W/") for item in header.split(",") if item.strip()}
    return etag in candidates or "*" in candidates


def _cached(request: Request, *, etag_source: str, build: Callable[[], Any]) -> Response:
    """A GET answer with an ETag; 304 with no body when the client's copy is current."""
    etag = f'"{etag_source}"'
    if _etag_matches(request, etag):
        response = Response(status=status.HTTP_304_NOT_MODIFIED)
    else:
        response = Response(build())
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


def _paginated(view: GavelAPIView, request: Request, queryset: Any, render: Any) -> Response:
    paginator = CursorPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    assert page is not None
    return paginator.get_paginated_response([render(item) for item in page])


# --- auctions ------------------------------------------------------------------------------


class AuctionOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    seller_id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    category = serializers.CharField()
    image_urls = serializers.ListField(child=serializers.URLField())
    currency = serializers.CharField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    scheduled_ends_at = serializers.DateTimeField()
    starting_price_minor = serializers.IntegerField()
    price_minor = serializers.IntegerField()
    minimum_bid_minor = serializers.IntegerField()
    has_reserve = serializers.BooleanField()
    reserve_met = serializers.BooleanField()
    reserve_price_minor = serializers.IntegerField(
        allow_null=True, help_text="Shown to the seller and staff only"
    )
    buy_now_price_minor = serializers.IntegerField(allow_null=True)
    buy_now_available = serializers.BooleanField()
    bid_count = serializers.IntegerField()
    extension_count = serializers.IntegerField()
    increment_table = serializers.ListField(child=serializers.ListField())
    soft_close_seconds = serializers.IntegerField()
    soft_close_style = serializers.CharField()
    hold_policy = serializers.CharField()
    hold_threshold_minor = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()
    outcome = serializers.CharField()
    you_lead = serializers.BooleanField()
    you_won = serializers.BooleanField()
    hammer_price_minor = serializers.IntegerField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    version = serializers.IntegerField()


def auction_render(auction: Auction, viewer: User) -> dict[str, Any]:
    state = auction_public_state(auction)
    privileged = viewer.is_staff or auction.seller_id == viewer.pk
    return AuctionOutputSerializer(
        {
            "id": auction.pk,
            "seller_id": auction.seller_id,
            "title": auction.title,
            "description": auction.description,
            "category": auction.category,
            "image_urls": auction.image_urls,
            "currency": auction.currency,
            "starts_at": auction.starts_at,
            "ends_at": auction.ends_at,
            "scheduled_ends_at": auction.scheduled_ends_at,
            "starting_price_minor": auction.starting_price_minor,
            "price_minor": state.price_minor,
            "minimum_bid_minor": state.minimum_bid_minor,
            "has_reserve": state.has_reserve,
            "reserve_met": state.reserve_met,
            "reserve_price_minor": auction.reserve_price_minor if privileged else None,
            "buy_now_price_minor": auction.buy_now_price_minor,
            "buy_now_available": state.buy_now_available,
            "bid_count": auction.bid_count,
            "extension_count": auction.extension_count,
            "increment_table": auction.increment_table,
            "soft_close_seconds": auction.soft_close_seconds,
            "soft_close_style": auction.soft_close_style,
            "hold_policy": auction.hold_policy,
            "hold_threshold_minor": auction.hold_threshold_minor,
            "status": auction.status,
            "outcome": auction.outcome,
            "you_lead": auction.leader_id == viewer.pk,
            "you_won": auction.winner_id == viewer.pk,
            "hammer_price_minor": auction.hammer_price_minor,
            "closed_at": auction.closed_at,
            "version": auction.version,
        }
    ).data


class _AuctionTermsSerializer(StrictSerializer):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    category = serializers.CharField(max_length=64)
    image_urls = serializers.ListField(
        child=serializers.URLField(max_length=2_000), required=False, max_length=24
    )
    currency = serializers.CharField(min_length=3, max_length=3)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    starting_price_minor = MinorUnitsField(min_value=1)
    reserve_price_minor = MinorUnitsField(min_value=1, required=False, allow_null=True)
    buy_now_price_minor = MinorUnitsField(min_value=1, required=False, allow_null=True)
    increment_table = serializers.ListField(
        child=serializers.ListField(child=MinorUnitsField(min_value=0), min_length=2, max_length=2),
        required=False,
        allow_null=True,
        max_length=50,
    )
    soft_close_seconds = serializers.IntegerField(min_value=0, max_value=86_400, required=False)
    soft_close_style = serializers.ChoiceField(
        choices=Auction.SoftCloseStyle.choices, required=False
    )
    hold_policy = serializers.ChoiceField(choices=Auction.HoldPolicy.choices, required=False)
    hold_threshold_minor = MinorUnitsField(min_value=0, required=False, allow_null=True)


class AuctionCreateApi(GavelAPIView):
    """Sellers list an item for auction."""

    permission_classes = (IsSeller,)

    class InputSerializer(_AuctionTermsSerializer):
        pass

    @extend_schema(request=InputSerializer, responses={201: AuctionOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        auction = auction_create(seller=request_user(request), **serializer.validated_data)
        return Response(
            auction_render(auction, request_user(request)), status=status.HTTP_201_CREATED
        )


class AuctionUpdateApi(GavelAPIView):
    """The seller edits a listing, until the first bid."""

    class InputSerializer(_AuctionTermsSerializer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, partial=True, **kwargs)

    @extend_schema(request=InputSerializer, responses={200: AuctionOutputSerializer})
    def patch(self, request: Request, auction_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        auction = auction_update(
            auction_id=auction_id,
            user=request_user(request),
            changes=dict(serializer.validated_data),
        )
        return Response(auction_render(auction, request_user(request)))


class AuctionCancelApi(GavelAPIView):
    """The seller withdraws a listing, until the first bid."""

    @extend_schema(request=None, responses={200: AuctionOutputSerializer})
    def post(self, request: Request, auction_id: int) -> Response:
        auction = auction_cancel(auction_id=auction_id, user=request_user(request))
        return Response(auction_render(auction, request_user(request)))


class AuctionListApi(GavelAPIView):
    """Browse, filter and search auctions, newest first."""

    class FilterSerializer(StrictSerializer):
        status = serializers.ChoiceField(choices=Auction.Status.choices, required=False)
        category = serializers.CharField(required=False, max_length=64)
        currency = serializers.CharField(required=False, min_length=3, max_length=3)
        seller_id = serializers.IntegerField(required=False, min_value=1)
        search = serializers.CharField(required=False, max_length=200)
        price_min_minor = serializers.IntegerField(required=False, min_value=0)
        price_max_minor = serializers.IntegerField(required=False, min_value=0)
        open_only = serializers.BooleanField(required=False, default=False)
        cursor = serializers.CharField(required=False)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=100)

    @extend_schema(
        parameters=[FilterSerializer], responses={200: AuctionOutputSerializer(many=True)}
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        criteria = {
            key: value
            for key, value in filters.validated_data.items()
            if key not in ("cursor", "limit")
        }
        viewer = request_user(request)
        return _paginated(
            self,
            request,
            auction_list(**criteria),
            lambda auction: auction_render(auction, viewer),
        )


class AuctionDetailApi(GavelAPIView):
    """One auction; ETag / If-None-Match for cheap polling."""

    @extend_schema(responses={200: AuctionOutputSerializer})
    def get(self, request: Request, auction_id: int) -> Response:
        auction = auction_get(auction_id=auction_id)
        viewer = request_user(request)
        return _cached(
            request,
            etag_source=f"auction-{auction.pk}-v{auction.version}-u{viewer.pk}",
            build=lambda: auction_render(auction, viewer),
        )


# --- bids ----------------------------------------------------------------------------------


class BidHistoryOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    sequence = serializers.IntegerField()
    kind = serializers.CharField()
    bidder = serializers.CharField(help_text="Masked: 'Bidder 3' is the third person to bid")
    bidder_id = serializers.IntegerField(allow_null=True, help_text="Staff only")
    is_you = serializers.BooleanField()
    price_after_minor = serializers.IntegerField()
    currency = serializers.CharField()
    created_at = serializers.DateTimeField()


class BidHistoryPageSerializer(serializers.Serializer):  # type: ignore[type-arg]
    results = BidHistoryOutputSerializer(many=True)
    next_before_sequence = serializers.IntegerField(
        allow_null=True, help_text="Pass as before_sequence for the next (older) page"
    )


class AuctionBidsApi(GavelAPIView):
    """Bid history, newest first, with bidders masked (maximums stay private)."""

    class FilterSerializer(StrictSerializer):
        limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)
        before_sequence = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(parameters=[FilterSerializer], responses={200: BidHistoryPageSerializer})
    def get(self, request: Request, auction_id: int) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        limit: int = filters.validated_data["limit"]
        before = filters.validated_data.get("before_sequence")
        auction = auction_get(auction_id=auction_id)
        viewer = request_user(request)

        def build() -> dict[str, Any]:
            page = bid_history(auction=auction, limit=limit, before_sequence=before)
            results = [
                {
                    "sequence": bid.sequence,
                    "kind": bid.kind,
                    "bidder": f"Bidder {alias}",
                    "bidder_id": bid.bidder_id if viewer.is_staff else None,
                    "is_you": bid.bidder_id == viewer.pk,
                    "price_after_minor": bid.price_after_minor,
                    "currency": bid.currency,
                    "created_at": bid.created_at,
                }
                for bid, alias in page
            ]
            oldest = page[-1][0].sequence if page else None
            has_more = len(page) == limit and oldest is not None and oldest > 1
            return dict(
                BidHistoryPageSerializer(
                    {"results": results, "next_before_sequence": oldest if has_more else None}
                ).data
            )

        return _cached(
            request,
            etag_source=(
                f"bids-{auction.pk}-v{auction.version}-u{viewer.pk}-l{limit}-b{before or 0}"
            ),
            build=build,
        )


class BidPlaceOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    bid_id = serializers.IntegerField()
    max_amount_minor = serializers.IntegerField()
    currency = serializers.CharField()
    is_leading = serializers.BooleanField()
    extended = serializers.BooleanField()
    price_minor = serializers.IntegerField()
    minimum_bid_minor = serializers.IntegerField()
    reserve_met = serializers.BooleanField()
    ends_at = serializers.DateTimeField()
    version = serializers.IntegerField()


class BidPlaceApi(GavelAPIView):
    """Place a maximum bid (proxy bidding)."""

    class InputSerializer(StrictSerializer):
        max_amount_minor = MinorUnitsField(min_value=1)
        currency = serializers.CharField(min_length=3, max_length=3)

    @extend_schema(request=InputSerializer, responses={201: BidPlaceOutputSerializer})
    def post(self, request: Request, auction_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = bid_place(
            auction_id=auction_id, bidder=request_user(request), **serializer.validated_data
        )
        data = BidPlaceOutputSerializer(
            {
                "bid_id": result.bid.pk,
                "max_amount_minor": result.bid.max_amount_minor,
                "currency": result.bid.currency,
                "is_leading": result.is_leading,
                "extended": result.extended,
                "price_minor": result.state.price_minor,
                "minimum_bid_minor": result.state.minimum_bid_minor,
                "reserve_met": result.state.reserve_met,
                "ends_at": result.state.ends_at,
                "version": result.state.version,
            }
        ).data
        return Response(data, status=status.HTTP_201_CREATED)


class MyBidOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    bid_id = serializers.IntegerField()
    auction_id = serializers.IntegerField()
    auction_title = serializers.CharField()
    kind = serializers.CharField()
    max_amount_minor = serializers.IntegerField()
    currency = serializers.CharField()
    price_after_minor = serializers.IntegerField()
    auction_price_minor = serializers.IntegerField()
    auction_status = serializers.CharField()
    leading_now = serializers.BooleanField()
    created_at = serializers.DateTimeField()


def my_bid_render(bid: Bid) -> dict[str, Any]:
    auction = bid.auction
    return MyBidOutputSerializer(
        {
            "bid_id": bid.pk,
            "auction_id": auction.pk,
            "auction_title": auction.title,
            "kind": bid.kind,
            "max_amount_minor": bid.max_amount_minor,
            "currency": bid.currency,
            "price_after_minor": bid.price_after_minor,
            "auction_price_minor": auction.price_minor,
            "auction_status": auction.status,
            "leading_now": auction.leader_id == bid.bidder_id,
            "created_at": bid.created_at,
        }
    ).data


class MyBidsApi(GavelAPIView):
    """The caller's own bids, with their maximums, newest first."""

    @extend_schema(responses={200: MyBidOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return _paginated(self, request, bids_of_user(user=request_user(request)), my_bid_render)


class AuctionStreamApi(GavelAPIView):
    """Server-sent events: a snapshot, then every bid and price change, for a bounded time."""

    class FilterSerializer(StrictSerializer):
        max_seconds = serializers.FloatField(required=False, min_value=0.1)

    @extend_schema(parameters=[FilterSerializer], responses={(200, "text/event-stream"): str})
    def get(self, request: Request, auction_id: int) -> StreamingHttpResponse:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        auction = auction_get(auction_id=auction_id)
        limit = float(settings.AUCTIONS_STREAM_MAX_SECONDS)
        max_seconds = min(filters.validated_data.get("max_seconds", limit), limit)
        response = StreamingHttpResponse(
            auction_event_stream(
                auction_id=auction.pk,
                snapshot_read=partial(auction_stream_snapshot, auction_id=auction.pk),
                max_seconds=max_seconds,
                keepalive_seconds=settings.AUCTIONS_STREAM_KEEPALIVE_SECONDS,
            ),
            content_type="text/event-stream",
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response


# --- sales and second-chance offers --------------------------------------------------------


class SaleOutputSerializer(serializers.ModelSerializer[Sale]):
    class Meta:
        model = Sale
        fields = (
            "id",
            "auction",
            "buyer",
            "seller",
            "kind",
            "amount_minor",
            "currency",
            "status",
            "payment_deadline_at",
            "created_at",
        )
        read_only_fields = fields


def sale_render(sale: Sale) -> dict[str, Any]:
    return SaleOutputSerializer(sale).data


class AuctionBuyNowApi(GavelAPIView):
    """Buy at the buy-now price, ending the auction at once."""

    @extend_schema(request=None, responses={201: SaleOutputSerializer})
    def post(self, request: Request, auction_id: int) -> Response:
        sale = auction_buy_now(auction_id=auction_id, buyer=request_user(request))
        return Response(sale_render(sale), status=status.HTTP_201_CREATED)


class SaleListApi(GavelAPIView):
    """Sales the caller bought or sold; staff see all."""

    @extend_schema(responses={200: SaleOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return _paginated(self, request, sales_visible_to(user=request_user(request)), sale_render)


class SaleDetailApi(GavelAPIView):
    @extend_schema(responses={200: SaleOutputSerializer})
    def get(self, request: Request, sale_id: int) -> Response:
        sale = sale_get(sale_id=sale_id)
        viewer = request_user(request)
        if not viewer.is_staff and viewer.pk not in (sale.buyer_id, sale.seller_id):
            raise _forbidden("This sale is not yours.", "not_your_sale")
        return Response(sale_render(sale))


class OfferOutputSerializer(serializers.ModelSerializer[SecondChanceOffer]):
    class Meta:
        model = SecondChanceOffer
        fields = (
            "id",
            "auction",
            "bidder",
            "amount_minor",
            "currency",
            "status",
            "expires_at",
            "sale",
            "created_at",
        )
        read_only_fields = fields


def offer_render(offer: SecondChanceOffer) -> dict[str, Any]:
    return OfferOutputSerializer(offer).data


class OfferListApi(GavelAPIView):
    """Second-chance offers made to the caller (or on the caller's auctions); staff see all."""

    @extend_schema(responses={200: OfferOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return _paginated(
            self, request, offers_visible_to(user=request_user(request)), offer_render
        )


class OfferAcceptApi(GavelAPIView):
    @extend_schema(request=None, responses={200: OfferOutputSerializer})
    def post(self, request: Request, offer_id: int) -> Response:
        offer = second_chance_offer_accept(offer_id=offer_id, user=request_user(request))
        return Response(offer_render(offer))


class OfferDeclineApi(GavelAPIView):
    @extend_schema(request=None, responses={200: OfferOutputSerializer})
    def post(self, request: Request, offer_id: int) -> Response:
        offer = second_chance_offer_decline(offer_id=offer_id, user=request_user(request))
        return Response(offer_render(offer))


# --- eligibility: verified off-session payment methods -------------------------------------


class PaymentMethodOutputSerializer(serializers.ModelSerializer[VerifiedPaymentMethod]):
    class Meta:
        model = VerifiedPaymentMethod
        fields = ("id", "stripe_payment_method_id", "brand", "last4", "exp_month", "exp_year")
        read_only_fields = fields


class PaymentMethodListApi(GavelAPIView):
    """The caller's verified payment methods (never card numbers)."""

    @extend_schema(responses={200: PaymentMethodOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return _paginated(
            self,
            request,
            verified_payment_methods(user=request_user(request)),
            lambda method: PaymentMethodOutputSerializer(method).data,
        )


class SetupOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    setup_intent_id = serializers.CharField(allow_null=True)
    payment_intent_id = serializers.CharField(
        allow_null=True,
        help_text="A card adopted from a payment that saved it before Gavel: that"
        " PaymentIntent (such a setup has no SetupIntent)",
    )
    status = serializers.ChoiceField(choices=PaymentMethodSetup.Status.choices)
    client_secret = serializers.CharField(
        allow_null=True, help_text="For Stripe PaymentSheet / Elements; not stored by Gavel"
    )
    last_error_code = serializers.CharField()
    payment_method = PaymentMethodOutputSerializer(allow_null=True)


def setup_render(view: SetupView) -> dict[str, Any]:
    return SetupOutputSerializer(
        {
            "id": view.setup.pk,
            "setup_intent_id": view.setup.stripe_setup_intent_id,
            "payment_intent_id": view.setup.stripe_payment_intent_id,
            "status": view.setup.status,
            "client_secret": view.client_secret,
            "last_error_code": view.setup.last_error_code,
            "payment_method": view.payment_method,
        }
    ).data


class SetupCreateApi(GavelAPIView):
    """Start verifying a payment method for off-session charges (a SetupIntent)."""

    @extend_schema(request=None, responses={201: SetupOutputSerializer})
    def post(self, request: Request) -> Response:
        view = payment_method_setup_create(user=request_user(request))
        return Response(setup_render(view), status=status.HTTP_201_CREATED)


class SetupRefreshApi(GavelAPIView):
    """Re-read the SetupIntent from Stripe (after the app confirmed it, or 3-D Secure)."""

    @extend_schema(request=None, responses={200: SetupOutputSerializer})
    def post(self, request: Request, setup_id: int) -> Response:
        view = payment_method_setup_refresh(setup_id=setup_id, user=request_user(request))
        return Response(setup_render(view))
