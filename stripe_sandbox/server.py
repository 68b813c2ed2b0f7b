"""Standalone HTTP server: the Stripe API plus the control API under ``/_sandbox/``."""

from __future__ import annotations

import html
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from stripe_sandbox.control import CONTROL_METHODS
from stripe_sandbox.core import Sandbox
from stripe_sandbox.errors import SandboxError


class SandboxServer:
    """Serve ``sandbox`` over HTTP on a background thread.

    ``port=0`` picks a free port (see :attr:`url`). Webhooks are delivered by a background
    thread; with ``state_file`` the state is loaded at start and saved after each write.
    """

    def __init__(
        self,
        sandbox: Sandbox,
        host: str = "127.0.0.1",
        port: int = 12111,
        state_file: str | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.state_file = state_file
        if state_file and os.path.exists(state_file):
            sandbox.load(state_file)
        self.httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self.httpd.daemon_threads = True
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SandboxServer:
        t1 = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), name="sandbox-http", daemon=True
        )
        t2 = threading.Thread(target=self._background, name="sandbox-webhooks", daemon=True)
        self._threads = [t1, t2]
        for t in self._threads:
            t.start()
        return self

    def serve_forever(self) -> None:
        t2 = threading.Thread(target=self._background, name="sandbox-webhooks", daemon=True)
        t2.start()
        try:
            self.httpd.serve_forever()
        finally:
            self.stop()

    def stop(self) -> None:
        self._stop.set()
        self.sandbox._wakeup.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.persist()

    def persist(self) -> None:
        if self.state_file:
            tmp = self.state_file + ".tmp"
            self.sandbox.save(tmp)
            os.replace(tmp, self.state_file)

    def _background(self) -> None:
        while not self._stop.is_set():
            self.sandbox._wakeup.wait(0.25)
            self.sandbox._wakeup.clear()
            if self._stop.is_set():
                break
            try:
                self.sandbox.tick()
            except Exception as e:  # noqa: BLE001 - keep the loop alive
                print(f"stripe_sandbox: background error: {e!r}")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _make_handler(server: SandboxServer) -> type[BaseHTTPRequestHandler]:
    sb = server.sandbox

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "stripe-sandbox"

        def log_message(self, format: str, *args: Any) -> None:
            if os.environ.get("STRIPE_SANDBOX_LOG"):
                super().log_message(format, *args)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: Any) -> None:
            self._send(status, {"Content-Type": "application/json"}, json.dumps(payload).encode())

        def _api(self, method: str) -> None:
            body = self._body()
            resp = sb.handle(method, self.path, dict(self.headers.items()), body)
            if method != "GET":
                server.persist()
            if resp.timeout:
                if resp.hang_seconds:
                    time.sleep(resp.hang_seconds)
                self.close_connection = True
                return
            self._send(resp.status, resp.headers, resp.body)

        def _control(self, method: str) -> None:
            parts = urlsplit(self.path)
            segs = [s for s in parts.path.split("/") if s][1:]
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            body = self._body()
            try:
                if method == "GET" and len(segs) == 2 and segs[0] == "account_links":
                    target = sb.follow_account_link(segs[1], query.get("complete", "1") != "0")
                    server.persist()
                    self._send(302, {"Location": target}, b"")
                    return
                if method == "GET" and len(segs) == 2 and segs[0] == "3ds":
                    self._three_ds(segs[1], query)
                    return
                if method == "POST" and len(segs) == 1 and segs[0] in CONTROL_METHODS:
                    kwargs = json.loads(body or b"{}")
                    result = getattr(sb, segs[0])(**kwargs)
                    server.persist()
                    self._json(200, {"result": _jsonable(result)})
                    return
                if method == "GET" and segs == ["deliveries"]:
                    self._json(200, {"result": sb.deliveries(**query)})
                    return
                self._json(404, {"error": {"message": f"Unknown control call {parts.path}"}})
            except (SandboxError, TypeError, ValueError, KeyError) as e:
                self._json(400, {"error": {"message": str(e), "type": type(e).__name__}})

        def _three_ds(self, intent_id: str, query: dict[str, str]) -> None:
            result = query.get("result")
            if result in ("success", "fail"):
                out = sb.complete_3ds(intent_id) if result == "success" else sb.fail_3ds(intent_id)
                server.persist()
                raw = sb.objects.get(intent_id) or {}
                ret = raw.get("_return_url")
                if ret:
                    sep = "&" if "?" in ret else "?"
                    kind = "payment_intent" if intent_id.startswith("pi_") else "setup_intent"
                    self._send(302, {"Location": f"{ret}{sep}{kind}={intent_id}"}, b"")
                else:
                    self._json(200, out)
                return
            page = (
                "<html><body><h1>Sandbox 3-D Secure challenge</h1>"
                f"<p>{html.escape(intent_id)}</p>"
                f'<a href="?result=success">Complete authentication</a> | '
                f'<a href="?result=fail">Fail authentication</a></body></html>'
            ).encode()
            self._send(200, {"Content-Type": "text/html; charset=utf-8"}, page)

        def _dispatch(self, method: str) -> None:
            if self.path.startswith("/_sandbox/"):
                self._control(method)
            else:
                self._api(method)

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

    return Handler
