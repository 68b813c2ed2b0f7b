from django.contrib import admin

from gavel.auctions.models import (
    Auction,
    AuctionExtension,
    AuctionTransition,
    Bid,
    BuyerCustomer,
    BuyerCustomerTransition,
    PaymentMethodSetup,
    PaymentMethodSetupTransition,
    Sale,
    SaleTransition,
    SecondChanceOffer,
    SecondChanceOfferTransition,
    VerifiedPaymentMethod,
)


class _ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


class _TransitionInline(_ReadOnlyInline):
    """A state machine's history (``*Transition``): each subclass names its table."""

    fields = ("from_status", "to_status", "reason", "created_at")
    readonly_fields = fields


class BidInline(_ReadOnlyInline):
    model = Bid
    fields = ("sequence", "kind", "bidder", "max_amount_minor", "price_after_minor", "created_at")
    readonly_fields = fields
    ordering = ("-sequence",)


class ExtensionInline(_ReadOnlyInline):
    model = AuctionExtension
    fields = ("bid", "previous_ends_at", "new_ends_at", "created_at")
    readonly_fields = fields


class AuctionTransitionInline(_TransitionInline):
    model = AuctionTransition


class SaleInline(_ReadOnlyInline):
    model = Sale
    fields = ("id", "kind", "buyer", "amount_minor", "currency", "status", "payment_deadline_at")
    readonly_fields = fields


@admin.register(Auction)
class AuctionAdmin(admin.ModelAdmin[Auction]):
    list_display = (
        "id",
        "title",
        "seller",
        "status",
        "outcome",
        "currency",
        "price_minor",
        "bid_count",
        "extension_count",
        "ends_at",
    )
    list_filter = ("status", "outcome", "currency", "category")
    search_fields = ("title", "seller__email")
    readonly_fields = [field.name for field in Auction._meta.fields]
    inlines = (BidInline, ExtensionInline, AuctionTransitionInline, SaleInline)


class SaleTransitionInline(_TransitionInline):
    model = SaleTransition


@admin.register(Sale)
class SaleAdmin(admin.ModelAdmin[Sale]):
    list_display = ("id", "auction", "buyer", "kind", "amount_minor", "currency", "status")
    list_filter = ("status", "kind", "currency")
    readonly_fields = [field.name for field in Sale._meta.fields]
    inlines = (SaleTransitionInline,)


class OfferTransitionInline(_TransitionInline):
    model = SecondChanceOfferTransition


@admin.register(SecondChanceOffer)
class SecondChanceOfferAdmin(admin.ModelAdmin[SecondChanceOffer]):
    list_display = ("id", "auction", "bidder", "amount_minor", "currency", "status", "expires_at")
    list_filter = ("status",)
    readonly_fields = [field.name for field in SecondChanceOffer._meta.fields]
    inlines = (OfferTransitionInline,)


class SetupTransitionInline(_TransitionInline):
    model = PaymentMethodSetupTransition


@admin.register(PaymentMethodSetup)
class PaymentMethodSetupAdmin(admin.ModelAdmin[PaymentMethodSetup]):
    list_display = ("id", "user", "stripe_setup_intent_id", "status", "last_error_code")
    list_filter = ("status",)
    search_fields = ("stripe_setup_intent_id", "stripe_payment_intent_id", "user__email")
    readonly_fields = [field.name for field in PaymentMethodSetup._meta.fields]
    inlines = (SetupTransitionInline,)


class CustomerTransitionInline(_TransitionInline):
    model = BuyerCustomerTransition


@admin.register(BuyerCustomer)
class BuyerCustomerAdmin(admin.ModelAdmin[BuyerCustomer]):
    list_display = ("id", "user", "stripe_customer_id", "status", "generation", "synced_at")
    list_filter = ("status",)
    search_fields = ("stripe_customer_id", "user__email")
    readonly_fields = [field.name for field in BuyerCustomer._meta.fields]
    inlines = (CustomerTransitionInline,)


@admin.register(VerifiedPaymentMethod)
class VerifiedPaymentMethodAdmin(admin.ModelAdmin[VerifiedPaymentMethod]):
    list_display = ("id", "user", "brand", "last4", "exp_month", "exp_year", "verified_at")
    search_fields = ("stripe_payment_method_id", "user__email")
    readonly_fields = [field.name for field in VerifiedPaymentMethod._meta.fields]
