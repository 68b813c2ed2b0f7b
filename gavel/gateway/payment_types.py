"""Typed values of the money gateway modules (payment intents, transfers, refunds, payouts,
disputes, balance). Callers never see SDK objects; amounts are integer minor units and
currencies upper-case ISO 4217 codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def text(value: Any) -> str | None:
    """A non-empty string, or None."""
    return value if isinstance(value, str) and value else None


def object_id(value: Any) -> str | None:
    """An id whether Stripe sent the id or the expanded object."""
    if isinstance(value, dict):
        return text(value.get("id"))
    return text(value)


def _metadata(payload: dict[str, Any]) -> dict[str, str]:
    raw = payload.get("metadata") or {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def integer(value: Any) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True, slots=True)
class StripePaymentIntent:
    id: str
    status: str
    amount_minor: int
    amount_capturable_minor: int
    amount_received_minor: int
    currency: str
    capture_method: str
    client_secret: str | None
    latest_charge_id: str | None
    payment_method_id: str | None
    customer_id: str | None
    transfer_group: str | None
    last_error_code: str | None = None
    last_decline_code: str | None = None
    cancellation_reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    setup_future_usage: str | None = None  # the card saved for later: on_session / off_session

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> StripePaymentIntent:
        error = payload.get("last_payment_error") or {}
        return cls(
            id=str(payload["id"]),
            status=str(payload.get("status") or ""),
            amount_minor=integer(payload.get("amount")),
            amount_capturable_minor=integer(payload.get("amount_capturable")),
            amount_received_minor=integer(payload.get("amount_received")),
            currency=str(payload.get("currency") or "").upper(),
            capture_method=str(payload.get("capture_method") or ""),
            client_secret=text(payload.get("client_secret")),
            latest_charge_id=object_id(payload.get("latest_charge")),
            payment_method_id=object_id(payload.get("payment_method")),
            customer_id=object_id(payload.get("customer")),
            transfer_group=text(payload.get("transfer_group")),
            last_error_code=text(error.get("code")) if isinstance(error, dict) else None,
            last_decline_code=text(error.get("decline_code")) if isinstance(error, dict) else None,
            cancellation_reason=text(payload.get("cancellation_reason")),
            metadata=_metadata(payload),
            setup_future_usage=text(payload.get("setup_future_usage")),
        )


@dataclass(frozen=True, slots=True)
class StripeCharge:
    id: str
    status: str
    amount_minor: int
    amount_captured_minor: int
    amount_refunded_minor: int
    currency: str
    balance_transaction_id: str | None
    transfer_id: str | None
    application_fee_id: str | None
    payment_intent_id: str | None
    disputed: bool
    source_transfer_id: str | None = None  # a ``py_`` on a connected account: its transfer

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> StripeCharge:
        return cls(
            id=str(payload["id"]),
            status=str(payload.get("status") or ""),
            amount_minor=integer(payload.get("amount")),
            amount_captured_minor=integer(payload.get("amount_captured")),
            amount_refunded_minor=integer(payload.get("amount_refunded")),
            currency=str(payload.get("currency") or "").upper(),
            balance_transaction_id=object_id(payload.get("balance_transaction")),
            transfer_id=object_id(payload.get("transfer")),
            application_fee_id=object_id(payload.get("application_fee")),
            payment_intent_id=object_id(payload.get("payment_intent")),
            disputed=bool(payload.get("disputed")),
            source_transfer_id=object_id(payload.get("source_transfer")),
        )


@dataclass(frozen=True, slots=True)
class StripeBalanceTransaction:
    """One movement on one Stripe balance. ``net_minor = amount_minor - fee_minor``."""

    id: str
    amount_minor: int
    fee_minor: int
    net_minor: int
    currency: str
    type: str
    source_id: str | None
    status: str
    available_on: int
    stripe_fee_minor: int  # the part of fee_minor that is Stripe's own (not application fees)
    created: int = 0  # Unix seconds, when the movement happened on Stripe's side

    @property
    def created_at(self) -> datetime | None:
        return datetime.fromtimestamp(self.created, tz=UTC) if self.created else None

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> StripeBalanceTransaction:
        details = payload.get("fee_details") or []
        stripe_fee = sum(
            integer(item.get("amount"))
            for item in details
            if isinstance(item, dict) and item.get("type") == "stripe_fee"
        )
        return cls(
            id=str(payload["id"]),
            amount_minor=integer(payload.get("amount")),
            fee_minor=integer(payload.get("fee")),
            net_minor=integer(payload.get("net")),
            currency=str(payload.get("currency") or "").upper(),
            type=str(payload.get("type") or ""),
            source_id=object_id(payload.get("source")),
            status=str(payload.get("status") or ""),
            available_on=integer(payload.get("available_on")),
            stripe_fee_minor=stripe_fee,
            created=integer(payload.get("created")),
        )


@dataclass(frozen=True, slots=True)
class StripeTransfer:
    id: str
    amount_minor: int
    amount_reversed_minor: int
    currency: str
    destination: str
    destination_payment_id: str | None
    balance_transaction_id: str | None
    source_transaction_id: str | None
    transfer_group: str | None
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> StripeTransfer:
        return cls(
            id=str(payload["id"]),
            amount_minor=integer(payload.get("amount")),
            amount_reversed_minor=integer(payload.get("amount_reversed")),
            currency=str(payload.get("currency") or "").upper(),
            destination=object_id(payload.get("destination")) or "",
            destination_payment_id=object_id(payload.get("destination_payment")),
            balance_transaction_id=object_id(payload.get("balance_transaction")),
            source_transaction_id=object_id(payload.get("source_transaction")),
            transfer_group=text(payload.get("transfer_group")),
            metadata=_metadata(payload),
        )


@dataclass(frozen=True, slots=True)
class StripeTransferReversal:
    id: str
    amount_minor: int
    currency: str
    transfer_id: str
    balance_transaction_id: str | None
    destination_payment_refund_id: str | None

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> StripeTransferReversal:
        return cls(
            id=str(payload["id"]),
            amount_minor=integer(payload.get("amount")),
            currency=str(payload.get("currency") or "").upper(),
            transfer_id=object_id(payload.get("transfer")) or "",
            balance_transaction_id=object_id(payload.get("balance_transaction")),
            destination_payment_refund_id=object_id(payload.get("destination_payment_refund")),
        )


@dataclass(frozen=True, slots=True)
class StripeRefund:
    id: str
    status: str
    amount_minor: int
    currency: str
    charge_id: str | None
    balance_transaction_id: str | None
    transfer_reversal_id: str | None
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> StripeRefund:
        return cls(
            id=str(payload["id"]),
            status=str(payload.get("status") or ""),
            amount_minor=integer(payload.get("amount")),
            currency=str(payload.get("currency") or "").upper(),
            charge_id=object_id(payload.get("charge")),
            balance_transaction_id=object_id(payload.get("balance_transaction")),
            transfer_reversal_id=object_id(payload.get("transfer_reversal")),
            metadata=_metadata(payload),
        )


@dataclass(frozen=True, slots=True)
class StripePayout:
    id: str
    status: str
    amount_minor: int
    currency: str
    destination: str | None
    balance_transaction_id: str | None
    failure_balance_transaction_id: str | None
    failure_code: str | None
    failure_message: str | None
    arrival_date: int
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> StripePayout:
        return cls(
            id=str(payload["id"]),
            status=str(payload.get("status") or ""),
            amount_minor=integer(payload.get("amount")),
            currency=str(payload.get("currency") or "").upper(),
            destination=object_id(payload.get("destination")),
            balance_transaction_id=object_id(payload.get("balance_transaction")),
            failure_balance_transaction_id=object_id(payload.get("failure_balance_transaction")),
            failure_code=text(payload.get("failure_code")),
            failure_message=text(payload.get("failure_message")),
            arrival_date=integer(payload.get("arrival_date")),
            metadata=_metadata(payload),
        )


@dataclass(frozen=True, slots=True)
class StripeDispute:
    id: str
    status: str
    amount_minor: int
    currency: str
    charge_id: str | None
    payment_intent_id: str | None
    reason: str | None
    balance_transaction_ids: tuple[str, ...]
    evidence_due_by: int

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> StripeDispute:
        details = payload.get("evidence_details") or {}
        return cls(
            id=str(payload["id"]),
            status=str(payload.get("status") or ""),
            amount_minor=integer(payload.get("amount")),
            currency=str(payload.get("currency") or "").upper(),
            charge_id=object_id(payload.get("charge")),
            payment_intent_id=object_id(payload.get("payment_intent")),
            reason=text(payload.get("reason")),
            balance_transaction_ids=tuple(
                bt_id
                for bt_id in (object_id(item) for item in payload.get("balance_transactions") or [])
                if bt_id
            ),
            evidence_due_by=integer(details.get("due_by")) if isinstance(details, dict) else 0,
        )


@dataclass(frozen=True, slots=True)
class StripeBalance:
    available_minor: dict[str, int]
    pending_minor: dict[str, int]

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> StripeBalance:
        def amounts(key: str) -> dict[str, int]:
            return {
                str(item.get("currency") or "").upper(): integer(item.get("amount"))
                for item in payload.get(key) or []
                if isinstance(item, dict)
            }

        return cls(available_minor=amounts("available"), pending_minor=amounts("pending"))
