"""``postop ingest``: run one ingest worker until SIGINT/SIGTERM."""

from __future__ import annotations

import threading

from ingest.mqtt_source import MqttSource
from ingest.worker import IngestWorker
from vitals.service import run_service
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
    run_service(run, settings)


if __name__ == "__main__":
    main()
