"""stripe_sandbox: a stateful emulator of Stripe's API (Connect included).

Independent of any web framework; works with the official ``stripe`` SDK::

    from stripe_sandbox import Sandbox

    sandbox = Sandbox(api_keys=["sk_test_123"])
    client = sandbox.client()            # stripe.StripeClient wired in process
    pi = client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa",
                "confirm": True}
    )
    sandbox.advance(2 * 86400)           # funds become available
"""

from __future__ import annotations

from stripe_sandbox.core import DEFAULT_API_VERSION, Response, Sandbox
from stripe_sandbox.errors import SandboxError, StripeError
from stripe_sandbox.http_client import SandboxHTTPClient

__all__ = [
    "DEFAULT_API_VERSION",
    "Response",
    "Sandbox",
    "SandboxError",
    "SandboxHTTPClient",
    "StripeError",
]
