"""Kits on a virtual radio: every simulated device is a BLE peripheral with its own
virtual controller, every gateway gets a virtual controller served over TCP (``hci_port``:
the gateway opens ``tcp-client:127.0.0.1:PORT``), all on one bumble ``LocalLink`` so a
gateway also hears the neighbours' devices, as in a block of flats.

The radio has no air-time limits: what it measures is software cost, not on-air figures.
Values that no SIG service carries (a patch's respiratory rate and steps, the pain
diary) still go over the local JSON link (``vitals/link.py``).

Runs on its own asyncio loop in a thread; ``call`` runs a coroutine there from another
thread (tests use it to take a device out of range, wipe its bonds, set its clock).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from bumble.controller import Controller
from bumble.device import Device
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, Transport

from firmware_sim.ble_peripheral import SERVICES, SimPeripheral, device_configuration
from firmware_sim.clock import SimClock
from firmware_sim.devices import KitSimulator
from firmware_sim.link_client import LinkClient

log = logging.getLogger(__name__)
T = TypeVar("T")
# a frame this late (a backfill, or one held by the live gate) is not taken "now"
STALE_MS = 2_000


@dataclass
class BleKit:
    kit: KitSimulator
    hci_port: int  # where this kit's gateway finds its controller
    link_port: int | None = None  # the JSON link, for values no SIG service carries
    clock_offsets_s: dict[str, float] | None = None  # device id -> wrong clock
    out_of_range: frozenset[str] = frozenset()  # device ids out of range at the start


class BleSimulation:
    """Kits streaming over a virtual radio, on a simulated clock."""

    def __init__(
        self,
        kits: Sequence[BleKit],
        clock: SimClock,
        *,
        link_host: str = "127.0.0.1",
        window_ms: int = 600_000,
        start_ms: int | None = None,
        until_ms: int | None = None,
        live_gate: threading.Event | None = None,
    ) -> None:
        """Frames from ``start_ms`` (default: the clock's now; earlier ones are sent at
        once, as a backfill) until ``until_ms`` (default: forever). With ``live_gate``,
        the first frame still to come waits until ``go_live`` (a test calls it once the
        gateway listens); frames whose time passed meanwhile then go at once, but for
        continuous values, which a device only sends as it takes them (lost)."""
        self.kits = list(kits)
        self.live_gate = live_gate
        self.clock = clock
        self.start_ms = start_ms
        self.until_ms = until_ms
        self.streamed = threading.Event()
        self.caught_up = threading.Event()  # the backfill is done: frames now come live
        self.link_host = link_host
        self.window_ms = window_ms
        self.peripherals: dict[str, SimPeripheral] = {}
        self.sent = 0
        self.ready = threading.Event()
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="ble-sim", daemon=True)
        self._transports: list[Transport] = []
        self._error: BaseException | None = None

    # -- lifecycle --------------------------------------------------------------
    def start(self, timeout_s: float = 30.0) -> BleSimulation:
        self._thread.start()
        if not self.ready.wait(timeout_s):
            raise RuntimeError(f"the virtual radio did not come up: {self._error}")
        return self

    def go_live(self, for_s: float) -> None:
        """Open the live gate and stream for at least ``for_s`` seconds from now."""
        assert self.live_gate is not None, "a simulation without a live gate is always live"
        until = self.clock.now_ms() + int(for_s * 1000)
        self.until_ms = until if self.until_ms is None else max(self.until_ms, until)
        self.live_gate.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(lambda: None)
            self._thread.join(timeout=10)

    def wait(self, until_stopped: threading.Event) -> None:
        while self._thread.is_alive() and not until_stopped.wait(0.5):
            pass

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout_s)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:
            self._error = exc
            log.exception("the BLE simulation stopped")
        finally:
            for t in self._transports:
                self._loop.run_until_complete(t.close())
            self._loop.close()
            self.finished.set()

    # -- the radio --------------------------------------------------------------
    async def _main(self) -> None:
        link = LocalLink()  # type: ignore[no-untyped-call]
        for kit in self.kits:
            transport = await open_transport(f"tcp-server:127.0.0.1:{kit.hci_port}")
            self._transports.append(transport)
            Controller(
                f"gateway-{kit.kit.patient_key}",
                host_source=transport.source,
                host_sink=transport.sink,
                link=link,
            )
        for kit in self.kits:
            offsets = kit.clock_offsets_s or {}
            for dev in kit.kit.devices:
                if dev.kind not in SERVICES:
                    continue
                controller = Controller(dev.id, link=link)
                device = Device(
                    config=device_configuration(dev.id),
                    host=Host(controller, AsyncPipeSink(controller)),
                )
                tz = kit.kit.tz

                def wall_clock(tz: Any = tz) -> datetime:
                    return self.clock.now().astimezone(tz).replace(tzinfo=None)

                peripheral = SimPeripheral(
                    device,
                    dev.id,
                    dev.kind,
                    wall_clock=wall_clock,
                    clock_offset_s=offsets.get(dev.id, 0.0),
                )
                peripheral.in_range = dev.id not in kit.out_of_range
                await peripheral.start()
                self.peripherals[dev.id] = peripheral
        self.ready.set()
        try:
            await asyncio.gather(*(self._stream(kit) for kit in self.kits))
            self.caught_up.set()
            self.streamed.set()
            await asyncio.to_thread(self._stop.wait)  # keep serving the gateway until stopped
        finally:
            for p in self.peripherals.values():
                p.stop()

    async def _sleep_until(self, sim_ms: int) -> bool:
        while not self._stop.is_set():
            wait_s = self.clock.real_seconds_until(sim_ms)
            if not self.clock.free_running:
                self.clock.advance_to(sim_ms)
                await asyncio.sleep(0)
                return True
            if wait_s <= 0:
                # a backfill of days must not starve the radio: the devices answer the
                # gateway (connection, pairing) while they catch up
                await asyncio.sleep(0)
                return True
            if self.live_gate is not None and not self.live_gate.is_set():
                self.caught_up.set()
                await asyncio.sleep(0.05)
                continue
            self.caught_up.set()
            await asyncio.sleep(min(wait_s, 0.2))
        return False

    async def _stream(self, kit: BleKit) -> None:
        link = (
            LinkClient(self.link_host, kit.link_port, self._stop)
            if kit.link_port is not None
            else None
        )
        start = self.clock.now_ms() if self.start_ms is None else self.start_ms
        try:
            while not self._stop.is_set() and (self.until_ms is None or start < self.until_ms):
                end = start + self.window_ms
                if self.until_ms is not None:
                    end = min(end, self.until_ms)
                for frame in kit.kit.frames(start, end):
                    if not await self._sleep_until(frame.rx_ms):
                        return
                    kit.kit.emitted.append(frame)
                    if frame.char_uuid is None:
                        if link is not None:
                            await asyncio.to_thread(link.send, frame.line)
                        continue
                    peripheral = self.peripherals.get(frame.device_id)
                    if peripheral is not None:
                        stale = self.clock.now_ms() - frame.rx_ms > STALE_MS
                        await peripheral.deliver(frame, stale=stale)
                        self.sent += 1
                if not await self._sleep_until(end):
                    return
                start = end
        finally:
            if link is not None:
                link.close()
