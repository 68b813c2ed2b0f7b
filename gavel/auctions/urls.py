from django.urls import path

from gavel.auctions import apis

urlpatterns = [
    path("auctions/", apis.AuctionListApi.as_view(), name="auction-list"),
    path("auctions/create/", apis.AuctionCreateApi.as_view(), name="auction-create"),
    path("auctions/<int:auction_id>/", apis.AuctionDetailApi.as_view(), name="auction-detail"),
    path(
        "auctions/<int:auction_id>/update/",
        apis.AuctionUpdateApi.as_view(),
        name="auction-update",
    ),
    path(
        "auctions/<int:auction_id>/cancel/",
        apis.AuctionCancelApi.as_view(),
        name="auction-cancel",
    ),
    path("auctions/<int:auction_id>/bids/", apis.AuctionBidsApi.as_view(), name="auction-bids"),
    path(
        "auctions/<int:auction_id>/bids/place/",
        apis.BidPlaceApi.as_view(),
        name="auction-bid-place",
    ),
    path(
        "auctions/<int:auction_id>/buy-now/",
        apis.AuctionBuyNowApi.as_view(),
        name="auction-buy-now",
    ),
    path(
        "auctions/<int:auction_id>/stream/",
        apis.AuctionStreamApi.as_view(),
        name="auction-stream",
    ),
    path("me/bids/", apis.MyBidsApi.as_view(), name="my-bids"),
    path("sales/", apis.SaleListApi.as_view(), name="sale-list"),
    path("sales/<int:sale_id>/", apis.SaleDetailApi.as_view(), name="sale-detail"),
    path("second-chance-offers/", apis.OfferListApi.as_view(), name="offer-list"),
    path(
        "second-chance-offers/<int:offer_id>/accept/",
        apis.OfferAcceptApi.as_view(),
        name="offer-accept",
    ),
    path(
        "second-chance-offers/<int:offer_id>/decline/",
        apis.OfferDeclineApi.as_view(),
        name="offer-decline",
    ),
    path("payment-methods/", apis.PaymentMethodListApi.as_view(), name="payment-method-list"),
    path(
        "payment-methods/setup/",
        apis.SetupCreateApi.as_view(),
        name="payment-method-setup-create",
    ),
    path(
        "payment-methods/setup/<int:setup_id>/refresh/",
        apis.SetupRefreshApi.as_view(),
        name="payment-method-setup-refresh",
    ),
]
