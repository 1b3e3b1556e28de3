"""``postop gateway``: the home hub. Local link in, durable outbox, MQTT uplink out."""

from __future__ import annotations

import threading
from zoneinfo import ZoneInfo

from gateway.link_server import FrameHandler, LinkServer
from gateway.outbox import Outbox
from gateway.uplink import Uplink
from vitals.service import run_service
from vitals.settings import Settings


def run(settings: Settings, stop: threading.Event) -> None:
    gw = settings.gateway
    outbox = Outbox(gw.outbox_path)
    uplink = Uplink(outbox, settings.mqtt, gw)
    frames = FrameHandler(outbox, ZoneInfo(gw.device_timezone), uplink.notify)
    server = LinkServer(gw.link_host, gw.link_port, frames)
    server.serve_in_thread()
    uplink.start()
    try:
        uplink.run(stop)
    finally:
        server.shutdown()
        server.server_close()
        uplink.stop()
        outbox.close()


def main(settings: Settings | None = None) -> None:
    run_service(run, settings)


if __name__ == "__main__":
    main()
