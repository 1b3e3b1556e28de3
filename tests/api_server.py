"""The API under uvicorn in a thread of the test process, configured as production runs it
(``api.main.server_config``), on a free loopback port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from api.main import server_config
from postop.ports import free_port, wait_port
from vitals.settings import Settings


@dataclass(frozen=True)
class Serving:
    server: uvicorn.Server
    thread: threading.Thread
    settings: Settings  # with the port it listens on
    base_url: str

    def stop(self) -> None:
        """What SIGTERM does: in-flight requests get the grace, open streams are ended."""
        self.server.should_exit = True
        self.thread.join(self.settings.api.shutdown_grace_s + 10)


def start(settings: Settings, port: int | None = None) -> Serving:
    """Serve the app of ``settings`` on ``port`` (a free one if None) until ``stop``."""
    port = port or free_port()
    api = settings.api.model_copy(update={"host": "127.0.0.1", "port": port})
    settings = settings.model_copy(update={"api": api})
    server = uvicorn.Server(server_config(settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_port(port, 20), "the API did not start"
    return Serving(server, thread, settings, f"http://127.0.0.1:{port}")


@contextmanager
def serving(settings: Settings, port: int | None = None) -> Iterator[Serving]:
    served = start(settings, port)
    try:
        yield served
    finally:
        served.stop()
