"""``postop ingest``: run one ingest worker until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading

from ingest.mqtt_source import MqttSource
from ingest.worker import IngestWorker
from vitals.settings import Settings


def run(settings: Settings, stop: threading.Event) -> None:
    source = MqttSource(settings.mqtt, settings.ingest)
    worker = IngestWorker(
        settings.database_url.get_secret_value(), settings.ingest, source.inbox, source.ack
    )
    source.start()
    try:
        worker.run(stop)
    finally:
        source.stop()


def main(settings: Settings | None = None) -> None:
    settings = settings or Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run(settings, stop)


if __name__ == "__main__":
    main()
