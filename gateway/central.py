"""The gateway as a Bluetooth LE central: it serves exactly the devices its configuration
lists (by address), several at once, each in its own task:

connect when the device advertises (backoff after failures) -> discover -> subscribe to
every measurement characteristic it serves (one callback per characteristic, so a
retried subscribe never doubles a value) -> pair and bond when the device answers
'insufficient authentication/encryption' -> write Current Time (the device's clock
follows the gateway's) -> fetch the glucose records newer than the last sequence number
kept (RACP), or the oximeter's stored spot checks (RACP 'all', then 'delete' once they
are in the outbox) -> read Device Information and battery -> wait for the link to drop.

Every value goes through the same path as a local-link frame (``FrameHandler``): decoded,
committed to the outbox (before an indication is confirmed), or kept aside with a reason.
A device that lost its bond is unpaired here and paired again on the next connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.gatt_decode import (
    GLUCOSE_MEASUREMENT,
    PLX_SPOT_CHECK_MEASUREMENT,
    glucose_sequence_number,
)
from gateway.link_server import FrameHandler
from gateway.outbox import Outbox
from gateway.radio import BondLost, InsufficientSecurity, LinkLost, PeerLink, Radio, RadioError
from vitals.gateway_config import ConfiguredDevice
from vitals.link import gatt_frame
from vitals.wire import DeviceInfo

log = logging.getLogger(__name__)

# the measurement characteristics the gateway subscribes to, in this order
MEASUREMENTS = (0x2A35, 0x2A1C, 0x2A9D, 0x2A5E, 0x2A5F, 0x2A37, 0x2A18, 0x2A19)
BATTERY_LEVEL = 0x2A19
CURRENT_TIME = 0x2A2B
RACP = 0x2A52
DEVICE_INFORMATION = {
    0x2A29: "manufacturer",
    0x2A24: "model",
    0x2A25: "serial",
    0x2A26: "firmware_revision",
}
RACP_TIMEOUT_S = 60.0
CLOCK_SKEW_WARN_S = 60
RACP_BUSY_ERROR = 0x81  # ATT error: RACP procedure already in progress
RACP_BUSY_RETRIES = 3
CONNECT_TIMEOUT_S = 10.0


def exact_time_256(wall: datetime) -> bytes:
    """Current Time (0x2A2B) of a naive local wall-clock time: Date Time, day of week
    (Monday 1), 1/256 s fractions, adjust reason (manual time update)."""
    return (
        wall.year.to_bytes(2, "little")
        + bytes((wall.month, wall.day, wall.hour, wall.minute, wall.second))
        + bytes((wall.isoweekday(), wall.microsecond * 256 // 1_000_000, 0x01))
    )


def read_exact_time_256(value: bytes) -> datetime:
    """The Date Time part of a Current Time value (ValueError if it is not one)."""
    if len(value) < 7:
        raise ValueError(f"Current Time of {len(value)} bytes")
    year = int.from_bytes(value[:2], "little")
    return datetime(year, value[2], value[3], value[4], value[5], value[6])


@dataclass
class _DeviceState:
    config: ConfiguredDevice
    task: asyncio.Task[None] | None = None
    callbacks: dict[int, Callable[[bytes], None]] = field(default_factory=dict)
    # glucose: records at or below the floor were stored in an earlier session; the ones
    # seen in this session are not stored twice (a record can come live and by RACP)
    glucose_floor: int | None = None
    glucose_seen: set[int] = field(default_factory=set)
    last_record_seq: int | None = None  # the last glucose record received
    records_fetched: bool = False  # RACP delivered every stored record in this session
    racp_waiter: Callable[[bytes], None] | None = None
    clock_skew_s: int | None = None  # the device's clock minus ours, before we set it
    connections: int = 0
    pairings: int = 0


class Central:
    def __init__(
        self,
        radio: Radio,
        outbox: Outbox,
        frames: FrameHandler,
        device_tz: ZoneInfo,
        *,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self._radio = radio
        self._outbox = outbox
        self._frames = frames
        self._tz = device_tz
        self._clock_ms = clock_ms
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._devices: dict[str, _DeviceState] = {}
        self._last_seen_ms: dict[str, int] = {}  # device id -> last value received
        self.on_info: Callable[[], None] | None = None  # device information changed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self.controller_losses = 0  # times the controller went away (tests, status)

    # -- configuration (any thread) -----------------------------------------------
    def configure(self, devices: list[ConfiguredDevice]) -> None:
        """Serve exactly these devices from now on (kept for the next start)."""
        self._outbox.put("ble_devices", json.dumps([d.model_dump() for d in devices]))
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._apply, devices)

    def stored_configuration(self) -> list[ConfiguredDevice]:
        raw = self._outbox.get("ble_devices")
        if not raw:
            return []
        return [ConfiguredDevice.model_validate(d) for d in json.loads(raw)]

    def _apply(self, devices: list[ConfiguredDevice]) -> None:
        wanted = {d.address.upper(): d for d in devices}
        for address, state in list(self._devices.items()):
            if address not in wanted or wanted[address] != state.config:
                log.info("no longer serving %s (%s)", state.config.id, address)
                if state.task is not None:
                    state.task.cancel()
                del self._devices[address]
                if address not in wanted:  # not ours any more: no bond kept with it
                    asyncio.get_running_loop().create_task(self._forget(state.task, address))
        for address, dev in wanted.items():
            if address not in self._devices:
                state = _DeviceState(dev)
                state.task = asyncio.get_running_loop().create_task(
                    self._serve(state), name=f"ble-{dev.id}"
                )
                self._devices[address] = state
                log.info("serving %s at %s", dev.id, address)

    async def _forget(self, task: asyncio.Task[None] | None, address: str) -> None:
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)  # its link closed first
        await self._radio.forget(address)
        log.info("forgot the bond with %s", address)

    # -- the loop ---------------------------------------------------------------
    async def _open_radio(self, stop: asyncio.Event) -> bool:
        """Open the controller, with backoff until it is there (dongle plugged in, virtual
        radio started); False if asked to stop meanwhile."""
        delay = self._backoff_initial_s
        while not stop.is_set():
            try:
                await self._radio.open()
                return True
            except (OSError, RadioError) as exc:
                log.warning("Bluetooth controller not available (%s); retry in %.1f s", exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, self._backoff_max_s)
        return False

    async def run(self, stop: asyncio.Event) -> None:
        """Serve the configured devices until ``stop``. When the controller goes away
        (transport closed: dongle unplugged, virtual radio restarted) the links on it are
        lost and the controller is opened again with backoff; the devices' tasks wait
        meanwhile (nothing advertises on a closed radio) and connect again after."""
        self._loop = asyncio.get_running_loop()
        try:
            applied = False
            while await self._open_radio(stop):
                if not applied:
                    self._apply(self.stored_configuration())
                    applied = True
                lost = asyncio.ensure_future(self._radio.wait_lost())
                stopping = asyncio.ensure_future(stop.wait())
                try:
                    await asyncio.wait((lost, stopping), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    lost.cancel()
                    stopping.cancel()
                if stop.is_set():
                    break
                self.controller_losses += 1
                log.warning("the Bluetooth controller is gone; opening it again")
                try:
                    await asyncio.wait_for(self._radio.close(), 2.0)
                except TimeoutError:
                    log.info("the lost controller's transport did not close in time")
        finally:
            self._stopping = True
            tasks = [s.task for s in self._devices.values() if s.task is not None]
            for t in tasks:
                t.cancel()
            # a controller already gone (dongle pulled, radio stopped) answers nothing:
            # the goodbyes are bounded so the service still stops in time
            try:
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 3.0)
                await asyncio.wait_for(self._radio.close(), 2.0)
            except TimeoutError:
                log.warning("the Bluetooth controller did not answer while stopping")

    async def _serve(self, state: _DeviceState) -> None:
        dev = state.config
        delay = self._backoff_initial_s
        while not self._stopping:
            if not self._radio.seen(dev.address, within_s=2.0):
                await asyncio.sleep(0.2)
                continue
            try:
                link = await self._radio.connect(dev.address, CONNECT_TIMEOUT_S)
            except RadioError as exc:
                log.info("%s: no connection (%s); retry in %.1f s", dev.id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max_s)
                continue
            state.connections += 1
            log.info("%s: connected", dev.id)
            try:
                await self._session(state, link)
                delay = self._backoff_initial_s
            except BondLost as exc:
                log.warning("%s: %s; forgetting the bond, pairing again", dev.id, exc)
                await link.forget_bond()
            except LinkLost as exc:  # it left mid-session: wait for it to advertise again
                log.info("%s: %s", dev.id, exc)
                delay = self._backoff_initial_s
            except RadioError as exc:
                log.info("%s: session ended (%s); retry in %.1f s", dev.id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max_s)
            finally:
                await link.disconnect()
            log.info("%s: disconnected", dev.id)

    async def _guarded(
        self, state: _DeviceState, link: PeerLink, op: Callable[[], Awaitable[None]]
    ) -> None:
        """Run ``op``; if the device wants a secure link, pair (or encrypt) and retry once."""
        try:
            await op()
        except InsufficientSecurity:
            if await link.secure():
                state.pairings += 1
                log.info("%s: paired and bonded", state.config.id)
            await op()

    async def _session(self, state: _DeviceState, link: PeerLink) -> None:
        dev = state.config
        chars = await link.discover()
        state.glucose_floor = self._last_sequence(dev)
        state.glucose_seen.clear()
        state.records_fetched = False
        for uuid in MEASUREMENTS:
            if uuid in chars:
                callback = state.callbacks.setdefault(uuid, self._on_value(state, uuid))
                await self._guarded(state, link, lambda u=uuid, c=callback: link.subscribe(u, c))  # type: ignore[misc]
        if CURRENT_TIME in chars:
            await self._guarded(state, link, lambda: self._set_time(state, link))
        if RACP in chars and GLUCOSE_MEASUREMENT in chars:
            await self._fetch_records(state, link)
        elif RACP in chars and PLX_SPOT_CHECK_MEASUREMENT in chars:
            await self._fetch_spot_checks(state, link)
        await self._read_info(dev, link, chars)
        await link.disconnected.wait()

    def _on_value(self, state: _DeviceState, uuid: int) -> Callable[[bytes], None]:
        dev = state.config

        def on_value(value: bytes) -> None:
            rx_ms = self._clock_ms()
            if uuid == GLUCOSE_MEASUREMENT and not self._new_glucose_record(state, value):
                return
            self._frames.handle(gatt_frame(dev.id, uuid, value, rx_ms).rstrip(b"\n"))
            self._last_seen_ms[dev.id] = rx_ms

        return on_value

    # -- current time -----------------------------------------------------------
    async def _set_time(self, state: _DeviceState, link: PeerLink) -> None:
        """Note how far the device's clock was off, then set it to ours."""
        try:
            theirs = read_exact_time_256(await link.read(CURRENT_TIME))
        except LinkLost:
            raise
        except (RadioError, ValueError) as exc:
            log.info("%s: could not read its clock: %s", state.config.id, exc)
        else:
            ours = datetime.fromtimestamp(self._clock_ms() / 1000, self._tz).replace(tzinfo=None)
            state.clock_skew_s = round((theirs - ours).total_seconds())
            if abs(state.clock_skew_s) > CLOCK_SKEW_WARN_S:
                log.warning("%s: its clock was %+d s off", state.config.id, state.clock_skew_s)
        now = datetime.fromtimestamp(self._clock_ms() / 1000, self._tz).replace(tzinfo=None)
        await link.write(CURRENT_TIME, exact_time_256(now))

    # -- stored records (glucose, RACP) -----------------------------------------
    def _last_sequence(self, dev: ConfiguredDevice) -> int | None:
        raw = self._outbox.get(f"ble_last_seq:{dev.id}")
        return int(raw) if raw else None

    def _new_glucose_record(self, state: _DeviceState, value: bytes) -> bool:
        """Whether a glucose record was not stored before (then it is noted)."""
        try:
            seq = glucose_sequence_number(value)
        except ValueError:
            return True  # the decoder refuses it with its reason
        state.last_record_seq = seq
        floor = state.glucose_floor
        if (floor is not None and seq <= floor) or seq in state.glucose_seen:
            return False
        state.glucose_seen.add(seq)
        if state.records_fetched:  # everything older is held: this is the new mark
            self._keep_last_sequence(state)
        return True

    def _keep_last_sequence(self, state: _DeviceState) -> None:
        """Persist the highest record number held, only once the stored records were all
        fetched in this session: a live record must not hide an older one not yet here."""
        last = self._last_sequence(state.config)
        high = max(state.glucose_seen, default=None)
        if high is not None and (last is None or high > last):
            self._outbox.put(f"ble_last_seq:{state.config.id}", str(high))

    async def _racp(self, state: _DeviceState, link: PeerLink, request: bytes) -> int | None:
        """Run one RACP procedure; the response code (None if the answer is not one)."""
        done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        def on_racp(value: bytes) -> None:
            if not done.done():
                done.set_result(value)

        state.racp_waiter = on_racp
        for attempt in range(RACP_BUSY_RETRIES + 1):
            try:
                await self._guarded(state, link, lambda: link.write(RACP, request))
                break
            except RadioError as exc:  # 'procedure already in progress': ask again shortly
                if exc.att_error != RACP_BUSY_ERROR or attempt == RACP_BUSY_RETRIES:
                    raise
                await asyncio.sleep(0.5)
        lost = asyncio.ensure_future(link.disconnected.wait())
        try:  # the response, or the end of the link (it will never come then)
            await asyncio.wait((done, lost), timeout=RACP_TIMEOUT_S, return_when="FIRST_COMPLETED")
        finally:
            lost.cancel()
        if not done.done():
            done.cancel()
            if link.disconnected.is_set():
                raise LinkLost("RACP: link lost")
            raise RadioError("no RACP response")
        response = done.result()
        if len(response) >= 4 and response[0] == 0x06:
            return response[3]
        return None

    async def _subscribe_racp(self, state: _DeviceState, link: PeerLink) -> None:
        def on_racp(value: bytes) -> None:
            if state.racp_waiter is not None:
                state.racp_waiter(value)

        racp_callback = state.callbacks.setdefault(RACP, on_racp)
        await self._guarded(state, link, lambda: link.subscribe(RACP, racp_callback))

    async def _fetch_spot_checks(self, state: _DeviceState, link: PeerLink) -> None:
        """The pulse oximeter's stored spot checks. The PLX service's RACP knows only
        'all records' and a spot check carries no sequence number, so the equivalent of
        'greater than the last one held' is: report all, then delete them on the device.
        Each arrives as an indication confirmed only once committed to the outbox, and the
        delete is written only after the report's success: a link or a gateway lost midway
        leaves them on the device, to come again (a repeat is stored once: same device,
        metric and time)."""
        dev = state.config
        await self._subscribe_racp(state, link)
        code = await self._racp(state, link, bytes((0x01, 0x01)))  # report stored: all
        if code == 0x06:  # no records found
            return
        if code != 0x01:
            log.warning("%s: RACP answered %s to 'report stored spot checks'", dev.id, code)
            return
        code = await self._racp(state, link, bytes((0x02, 0x01)))  # delete stored: all
        if code != 0x01:
            log.warning("%s: RACP answered %s to 'delete stored spot checks'", dev.id, code)

    async def _fetch_records(self, state: _DeviceState, link: PeerLink) -> None:
        dev = state.config
        await self._subscribe_racp(state, link)
        floor = state.glucose_floor
        if floor is not None:
            # a meter that was reset numbers its records from the start again: its last
            # record is then below what we hold, and only 'all records' gets them
            state.last_record_seq = None
            code = await self._racp(state, link, bytes((0x01, 0x06)))  # the last record
            last = state.last_record_seq
            if code == 0x06 or (last is not None and last < floor):
                log.warning(
                    "%s: its records restart (last %s, ours %d): meter reset, asking for all",
                    dev.id,
                    last,
                    floor,
                )
                self._outbox.put(f"ble_last_seq:{dev.id}", "")
                state.glucose_floor = floor = None
        if floor is None:
            request = bytes((0x01, 0x01))  # report stored records: all
        else:  # greater than or equal to last + 1: nothing fetched twice
            request = bytes((0x01, 0x03, 0x01)) + ((floor + 1) & 0xFFFF).to_bytes(2, "little")
        code = await self._racp(state, link, request)
        if code not in (0x01, 0x06):  # success, no records found
            log.warning("%s: RACP answered %s", dev.id, code)
            return
        state.records_fetched = True
        self._keep_last_sequence(state)

    # -- device information and battery -----------------------------------------
    async def _read_info(self, dev: ConfiguredDevice, link: PeerLink, chars: set[int]) -> None:
        info: dict[str, str] = {}
        for uuid, name in DEVICE_INFORMATION.items():
            if uuid in chars:
                try:
                    info[name] = (await link.read(uuid)).decode("utf-8", "replace")
                except LinkLost:
                    raise
                except RadioError as exc:
                    log.info("%s: could not read %s: %s", dev.id, name, exc)
        if BATTERY_LEVEL in chars:  # the value itself arrives as notifications
            try:
                info["battery_pct"] = str((await link.read(BATTERY_LEVEL))[0])
            except LinkLost:
                raise
            except (RadioError, IndexError) as exc:
                log.info("%s: could not read the battery level: %s", dev.id, exc)
        if info:
            self._last_seen_ms[dev.id] = self._clock_ms()
            self._outbox.put(f"ble_info:{dev.id}", json.dumps(info, sort_keys=True))
            log.info("%s: %s", dev.id, ", ".join(f"{k}={v}" for k, v in sorted(info.items())))
            if self.on_info is not None:
                self.on_info()

    def device_info(self) -> list[DeviceInfo]:
        """What the gateway knows of the devices it serves, for its status (any thread)."""
        out = []
        for state in list(self._devices.values()):
            dev_id = state.config.id
            raw = self._outbox.get(f"ble_info:{dev_id}")
            info: dict[str, str] = json.loads(raw) if raw else {}
            battery = info.get("battery_pct")
            try:
                out.append(
                    DeviceInfo(
                        device=dev_id,
                        manufacturer=info.get("manufacturer", "")[:64] or None,
                        model=info.get("model", "")[:64] or None,
                        serial=info.get("serial", "")[:64] or None,
                        firmware_revision=info.get("firmware_revision", "")[:64] or None,
                        battery_pct=int(battery) if battery and int(battery) <= 100 else None,
                        last_seen_ms=self._last_seen_ms.get(dev_id),
                        clock_skew_s=state.clock_skew_s,
                    )
                )
            except ValueError as exc:  # a device's odd strings never stop the status
                log.info("%s: device information not reported: %s", dev_id, exc)
        return out

    def connections(self, device_id: str) -> tuple[int, int]:
        """(connections, pairings) so far for a device (tests, status)."""
        for s in self._devices.values():
            if s.config.id == device_id:
                return s.connections, s.pairings
        return 0, 0
