"""``python -m stripe_sandbox --port 12111``: run the sandbox as a standalone server."""

from __future__ import annotations

import argparse
import contextlib

from stripe_sandbox.core import Sandbox
from stripe_sandbox.server import SandboxServer


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m stripe_sandbox", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=12111)
    ap.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help="accepted secret key (repeatable; default sk_test_sandbox)",
    )
    ap.add_argument("--state-file", help="load/save state here (JSON) to survive restarts")
    ap.add_argument(
        "--frozen-clock",
        action="store_true",
        help="time moves only through POST /_sandbox/advance (default: real time)",
    )
    ap.add_argument("--base-url", help="public URL of this server (for links in objects)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--card-fee-bps", type=int, default=290)
    ap.add_argument("--card-fee-fixed", type=int, default=30)
    ap.add_argument("--available-delay-days", type=int, default=2)
    ap.add_argument("--webhook-timeout", type=float, default=10.0)
    args = ap.parse_args(argv)
    base_url = args.base_url or f"http://{args.host}:{args.port}"
    sandbox = Sandbox(
        api_keys=args.api_keys or ["sk_test_sandbox"],
        realtime=not args.frozen_clock,
        webhook_mode="background",
        webhook_timeout=args.webhook_timeout,
        base_url=base_url,
        seed=args.seed,
        card_fee_bps=args.card_fee_bps,
        card_fee_fixed=args.card_fee_fixed,
        available_delay_days=args.available_delay_days,
    )
    server = SandboxServer(sandbox, args.host, args.port, args.state_file)
    print(f"stripe_sandbox listening on {server.url} (platform {sandbox.platform_id})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
