"""``postop ingest``: run one ingest worker until SIGINT/SIGTERM."""

from __future__ import annotations

import threading

from ingest.mqtt_source import MqttSource
from ingest.worker import IngestWorker
from store.service_status import BrokerMonitor
from vitals.service import run_service
from vitals.settings import Settings


def run(settings: Settings, stop: threading.Event) -> None:
    source = MqttSource(settings.mqtt, settings.ingest)
    worker = IngestWorker(
        settings.database_url.get_secret_value(), settings.ingest, source.inbox, source.ack
    )
    source.start()
    BrokerMonitor(
        settings.database_url.get_secret_value(),
        "ingest",
        settings.ingest.client_id,
        f"{settings.mqtt.host}:{settings.mqtt.port}",
        source.connected.is_set,
        settings.mqtt.down_log_s,
    ).start(stop)
    try:
        worker.run(stop)
    finally:
        source.stop()


def main(settings: Settings | None = None) -> None:
    run_service(run, settings)


if __name__ == "__main__":
    main()
