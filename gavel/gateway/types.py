"""Typed values the gateway returns; callers never see SDK objects."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StripeCustomer:
    id: str
    email: str | None
