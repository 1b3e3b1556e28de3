"""How every postop service process runs: logging from the settings, and SIGINT/SIGTERM
setting a stop event that the service's loop watches, so it can finish its work in hand."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable

from vitals.settings import Settings


def run_service(
    run: Callable[[Settings, threading.Event], None], settings: Settings | None = None
) -> None:
    settings = settings or Settings()
    os.umask(0o077)  # every file a service creates (outbox, bonds, logs) is its own alone
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run(settings, stop)
