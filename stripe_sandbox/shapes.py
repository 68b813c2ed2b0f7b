"""Object templates: every object starts with the top-level keys of Stripe's own example."""

from __future__ import annotations

import copy
from typing import Any

from stripe_sandbox._shape_keys import FIXTURE_KEYS

_DEFAULTS: dict[str, Any] = {
    "metadata": {},
    "livemode": False,
}

_TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "payment_intent": {"payment_method_types": ["card"], "amount_details": {"tip": {}}},
    "setup_intent": {"payment_method_types": ["card"], "flow_directions": None},
    "charge": {
        "billing_details": {
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": None,
            "name": None,
            "phone": None,
        },
        "fraud_details": {},
        "disputed": False,
        "refunded": False,
        "amount_refunded": 0,
    },
    "customer": {
        "balance": 0,
        "delinquent": False,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "next_invoice_sequence": 1,
        "preferred_locales": [],
        "tax_exempt": "none",
    },
    "balance_transaction": {"fee": 0, "fee_details": [], "exchange_rate": None},
    "transfer": {"amount_reversed": 0, "reversed": False, "source_type": "card"},
    "payout": {
        "automatic": False,
        "method": "standard",
        "source_type": "card",
        "type": "bank_account",
        "reconciliation_status": "not_applicable",
    },
    "dispute": {"enhanced_eligibility_types": [], "is_charge_refundable": False},
    "webhook_endpoint": {"application": None, "description": None, "status": "enabled"},
}


def template(kind: str) -> dict[str, Any]:
    """A fresh dict with every fixture key of ``kind`` set to a neutral default."""
    obj: dict[str, Any] = {"object": kind}
    for key in FIXTURE_KEYS.get(kind, ()):
        obj[key] = copy.deepcopy(_DEFAULTS.get(key))
    for key, value in _TYPE_DEFAULTS.get(kind, {}).items():
        obj[key] = copy.deepcopy(value)
    obj["object"] = kind
    return obj
