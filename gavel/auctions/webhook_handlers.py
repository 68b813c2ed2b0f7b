"""Stripe webhook handlers of the auctions app (SetupIntent confirmation)."""
