"""Domain metrics of the auctions app."""

from __future__ import annotations

from prometheus_client import Counter

BIDS = Counter("gavel_auctions_bids_total", "Bids by result", ["result"])
CLOSES = Counter("gavel_auctions_closes_total", "Auction closes by outcome", ["outcome"])
SALES = Counter("gavel_auctions_sale_transitions_total", "Sale status changes", ["to_status"])
OFFERS = Counter("gavel_auctions_second_chance_total", "Second-chance offers by status", ["status"])
