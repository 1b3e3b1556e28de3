"""The gateway's Bluetooth controller goes away while it runs (USB dongle unplugged,
virtual radio restarted): the central does not die with it, it opens the controller
again with backoff and serves its devices again. The controller here is a virtual one
in its own OS process, killed (SIGKILL) and started again on the same port."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from firmware_sim.ble_peripheral import ble_address

from gateway.central import Central
from gateway.link_server import FrameHandler
from gateway.outbox import Outbox
from gateway.radio_bumble import BumbleRadio
from postop.ports import free_port
from tests.e2e.ble_radio_process import patch_kit
from tests.stack import wait_for
from vitals.gateway_config import ConfiguredDevice

ROOT = Path(__file__).resolve().parents[2]
KEY = "radio-restart"


def start_radio(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'firmware-sim'}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.ble_radio_process", str(port), KEY],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    return proc


class CentralThread:
    def __init__(self, central: Central) -> None:
        self.central = central
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.stop_event = asyncio.Event()
        try:
            self.loop.run_until_complete(self.central.run(self.stop_event))
        except BaseException as exc:
            self.error = exc
        finally:
            self.loop.close()

    def stop(self) -> None:
        if self.stop_event is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=15)


@pytest.fixture
def radios() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_the_gateway_opens_its_controller_again_after_the_radio_died(
    tmp_path: Path, radios: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    device_id = patch_kit(KEY, datetime.now(UTC)).device_ids()[0]
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    tz = ZoneInfo("Europe/Paris")
    frames = FrameHandler(outbox, tz, lambda: None)
    radio = BumbleRadio(f"tcp-client:127.0.0.1:{port}", "gw-radio-restart", tmp_path / "b.json")
    central = Central(radio, outbox, frames, tz, backoff_initial_s=0.2, backoff_max_s=1.0)
    central.configure([ConfiguredDevice(id=device_id, address=ble_address(device_id))])
    runner = CentralThread(central)
    try:
        runner.thread.start()  # before the radio: it waits for its controller
        time.sleep(1.0)
        radios.append(start_radio(port))
        wait_for(lambda: outbox.depth() >= 3, 60, "heart rates over the first radio")

        radios[0].kill()  # the controller is gone, as a dongle pulled out
        radios[0].wait(10)
        wait_for(lambda: central.controller_losses == 1, 10, "the central to see it gone")
        time.sleep(2.0)  # it tries again meanwhile (connection refused), and lives on
        assert runner.thread.is_alive()
        before = outbox.depth()

        radios.append(start_radio(port))
        wait_for(lambda: outbox.depth() >= before + 3, 60, "heart rates over the new radio")
        assert central.connections(device_id)[0] >= 2
        assert runner.thread.is_alive()
    finally:
        runner.stop()
        outbox.close()
    assert runner.error is None
