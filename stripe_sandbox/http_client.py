"""In-process transport: a ``stripe.HTTPClient`` that hands requests to a Sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import stripe

if TYPE_CHECKING:
    from stripe_sandbox.core import Sandbox


class _Headers(Mapping[str, str]):
    """Case-insensitive response headers (the SDK looks up both ``Request-Id`` and
    ``request-id``)."""

    def __init__(self, items: Mapping[str, str]) -> None:
        self._d = {k.lower(): (k, v) for k, v in items.items()}

    def __getitem__(self, key: str) -> str:
        return self._d[key.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._d.values())

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._d


class SandboxHTTPClient(stripe.HTTPClient):
    """Use as ``stripe.StripeClient(key, http_client=SandboxHTTPClient(sandbox),
    base_addresses={"api": "http://sandbox.invalid"})`` or
    ``stripe.default_http_client = SandboxHTTPClient(sandbox)``.

    No sockets: each request is processed synchronously by the sandbox. A fault-injected
    "timeout after apply" raises ``stripe.APIConnectionError`` (what the SDK raises on a
    network timeout) after the request was applied.
    """

    name = "stripe_sandbox"

    def __init__(self, sandbox: Sandbox, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sandbox = sandbox

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        body = post_data.decode() if isinstance(post_data, bytes) else post_data
        resp = self.sandbox.handle(method, url, dict(headers or {}), body)
        if resp.timeout:
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]
                "Unexpected error communicating with Stripe. If this problem persists,\n"
                "let us know at support@stripe.com.\n\n(Network error: ReadTimeout: "
                "Request timed out)",
                should_retry=True,
            )
        return resp.body.decode(), resp.status, _Headers(resp.headers)

    def request_stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[Any, int, Mapping[str, str]]:
        import io

        content, status, hdrs = self.request(method, url, headers, post_data)
        return io.BytesIO(content.encode()), status, hdrs

    def close(self) -> None:
        pass

    # async variants (``await client.v1.customers.create_async()``): same in-process call
    async def request_async(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        post_data: Any = None,
    ) -> tuple[bytes, int, Mapping[str, str]]:
        content, status, hdrs = self.request(method, url, headers, post_data)
        return content.encode(), status, hdrs

    async def request_stream_async(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        post_data: Any = None,
    ) -> tuple[AsyncIterator[bytes], int, Mapping[str, str]]:
        content, status, hdrs = self.request(method, url, headers, post_data)

        async def chunks() -> AsyncIterator[bytes]:
            yield content.encode()

        return chunks(), status, hdrs

    async def close_async(self) -> None:
        pass

    def sleep_async(self, secs: float) -> Awaitable[None]:
        return asyncio.sleep(secs)
