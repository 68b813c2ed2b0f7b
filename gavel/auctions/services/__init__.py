"""Services of the auctions app (writes). Public entry points for other apps and the demo:

* listing: ``auction_create``, ``auction_update``, ``auction_cancel``
* bidding: ``bid_place``, ``auction_buy_now``
* closing: ``auction_close``, ``auctions_close_due``, ``auction_closes_schedule``
* sales (called by payments): ``sale_mark_paid``, ``sale_payment_failed``;
  ``sales_unpaid_cancel_due``, ``second_chance_offer_accept``, ``second_chance_offer_decline``,
  ``second_chance_offers_expire_due``
* eligibility: ``payment_method_setup_create``, ``payment_method_setup_refresh``,
  ``setup_intent_event_apply``
* customers (``services.customers``): ``buyer_customers_import``, ``buyer_customer_refresh``,
  ``buyer_customers_refresh``, ``buyer_customers_janitor``, ``buyer_customer_deleted_apply``,
  ``buyer_customer_card_attached_apply``
"""

from gavel.auctions.services.bidding import auction_buy_now, bid_place
from gavel.auctions.services.closing import (
    auction_close,
    auction_closes_schedule,
    auctions_close_due,
)
from gavel.auctions.services.eligibility import (
    payment_method_detached_apply,
    payment_method_setup_create,
    payment_method_setup_refresh,
    setup_intent_event_apply,
)
from gavel.auctions.services.listing import auction_cancel, auction_create, auction_update
from gavel.auctions.services.sales import (
    sale_mark_paid,
    sale_payment_failed,
    sales_unpaid_cancel_due,
    second_chance_offer_accept,
    second_chance_offer_decline,
)

__all__ = [
    "auction_buy_now",
    "auction_cancel",
    "auction_close",
    "auction_closes_schedule",
    "auction_create",
    "auction_update",
    "auctions_close_due",
    "bid_place",
    "payment_method_detached_apply",
    "payment_method_setup_create",
    "payment_method_setup_refresh",
    "sale_mark_paid",
    "sale_payment_failed",
    "sales_unpaid_cancel_due",
    "second_chance_offer_accept",
    "second_chance_offer_decline",
    "setup_intent_event_apply",
]
