"""``postop gateway``: the home hub. Bluetooth LE central (when an HCI transport is set)
and the local link in, durable outbox, MQTT uplink out."""

from __future__ import annotations

import asyncio
import logging
import threading
from zoneinfo import ZoneInfo

from gateway.central import Central
from gateway.link_server import FrameHandler, LinkServer
from gateway.outbox import Outbox
from gateway.radio_bumble import BumbleRadio
from gateway.uplink import Uplink
from vitals.service import run_service
from vitals.settings import Settings

log = logging.getLogger(__name__)


class _CentralThread:
    """The BLE central on its own asyncio loop, stopped with the service."""

    def __init__(self, central: Central) -> None:
        self.central = central
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="ble-central", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()
        try:
            self._loop.run_until_complete(self.central.run(self._stop))
        except Exception:
            log.exception("the Bluetooth central stopped")
        finally:
            self._loop.close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


def run(settings: Settings, stop: threading.Event) -> None:
    gw = settings.gateway
    outbox = Outbox(gw.outbox_path)
    uplink = Uplink(outbox, settings.mqtt, gw)
    frames = FrameHandler(outbox, ZoneInfo(gw.device_timezone), uplink.notify)
    server = LinkServer(gw.link_host, gw.link_port, frames)
    server.serve_in_thread()
    central = None
    if gw.hci_transport:
        radio = BumbleRadio(gw.hci_transport, gw.gateway_id, gw.ble_bonds_path)
        central = _CentralThread(Central(radio, outbox, frames, ZoneInfo(gw.device_timezone)))
        uplink.on_devices = central.central.configure
        uplink.device_info = central.central.device_info
        central.central.on_info = uplink.status_changed
        central.start()
    uplink.start()
    try:
        uplink.run(stop)
    finally:
        if central is not None:
            central.stop()
        server.shutdown()
        server.server_close()
        uplink.stop()
        outbox.close()


def main(settings: Settings | None = None) -> None:
    run_service(run, settings)


if __name__ == "__main__":
    main()
