"""The Stripe gateway: the only package that imports ``stripe``.

It pins the API version (settings.STRIPE_API_VERSION), derives idempotency keys from our own
stored operation ids, maps SDK errors into ``GatewayRetryableError``, ``GatewayFinalError``
and ``GatewayCardDeclined``, and returns our own typed values.
"""
