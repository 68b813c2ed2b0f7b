"""The intake application (``gavel.asgi``) served by uvicorn in a thread of the test process,
as production serves it (uvloop, httptools), on the test database: tests post real HTTP to it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn


class IntakeServer:
    def __init__(self) -> None:
        from gavel.asgi import application

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            application,
            host="127.0.0.1",
            port=self.port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="intake-server", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the intake server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@contextmanager
def intake_server_running() -> Iterator[IntakeServer]:
    """A fresh server (and so a fresh group-commit writer, built from the settings in force)."""
    server = IntakeServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
