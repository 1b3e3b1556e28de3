"""A simulated device as a real Bluetooth LE peripheral (bumble host stack on a virtual
controller): it advertises, serves its standard service with a proper GATT database and
sends its measurements as notifications or indications.

What a real device of each kind does, and what the gateway must cope with:

- Secure devices (blood pressure, weight, glucose) let a client enable notifications or
  indications (CCCD) and use the Record Access Control Point only on an encrypted link;
  the gateway has to pair (LE Secure Connections, Just Works) and bond.
- Measurements that carry their own Date Time (BP, temperature, weight, SpO2 spot check,
  glucose) are kept while no gateway listens and sent on reconnection: by indication
  (BP, temperature, weight, oldest first, each removed once confirmed) or through the
  Record Access Control Point: glucose records (the meter's memory keeps them, numbered;
  'report stored records' by sequence number) and the oximeter's stored spot checks
  (PLX service: 'all records' is the only operator, a spot check carries no sequence
  number; the hub asks for all of them, then deletes them once it holds them). A spot
  check taken while the hub listens is indicated at once and not stored.
  Continuous values (heart rate, continuous SpO2) taken while nobody listens are lost,
  as on a real device.
- Its wall clock can be wrong (``clock_offset_s``): its Date Times are stamped with
  that clock until the gateway writes Current Time (0x2A2B).
- It can go out of range (disconnect, stop advertising) and can lose its bonds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bumble import att, gatt, hci
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device, DeviceConfiguration
from bumble.gatt import Characteristic, CharacteristicValue, Descriptor, Service
from bumble.profiles.device_information_service import DeviceInformationService

from firmware_sim.devices import DeviceKind, EmittedFrame
from firmware_sim.gatt_encode import (
    BLOOD_PRESSURE_MEASUREMENT,
    GLUCOSE_MEASUREMENT,
    HEART_RATE_MEASUREMENT,
    PLX_CONTINUOUS_MEASUREMENT,
    PLX_SPOT_CHECK_MEASUREMENT,
    TEMPERATURE_MEASUREMENT,
    WEIGHT_MEASUREMENT,
    date_time,
    encode,
)

log = logging.getLogger(__name__)

BATTERY_SERVICE = 0x180F
BATTERY_LEVEL = 0x2A19
CURRENT_TIME_SERVICE = 0x1805
CURRENT_TIME = 0x2A2B
RACP = 0x2A52
GLUCOSE_FEATURE = 0x2A51
PLX_FEATURES = 0x2A60
PLX_SPOT_CHECK_STORAGE = 0x0004  # PLX Features: measurement storage for spot checks
CCCD = 0x2902

R = Characteristic.Properties
P = att.Attribute.Permissions

# kind -> (service, [(characteristic, property)], secure)
SERVICES: dict[DeviceKind, tuple[int, tuple[tuple[int, R], ...], bool]] = {
    DeviceKind.HR_PATCH: (0x180D, ((HEART_RATE_MEASUREMENT, R.NOTIFY),), False),
    DeviceKind.BP_CUFF: (0x1810, ((BLOOD_PRESSURE_MEASUREMENT, R.INDICATE),), True),
    DeviceKind.THERMOMETER: (0x1809, ((TEMPERATURE_MEASUREMENT, R.INDICATE),), False),
    DeviceKind.OXIMETER: (
        0x1822,
        ((PLX_SPOT_CHECK_MEASUREMENT, R.INDICATE), (PLX_CONTINUOUS_MEASUREMENT, R.NOTIFY)),
        False,
    ),
    DeviceKind.SCALE: (0x181D, ((WEIGHT_MEASUREMENT, R.INDICATE),), True),
    DeviceKind.GLUCOSE_METER: (0x1808, ((GLUCOSE_MEASUREMENT, R.NOTIFY),), True),
}
# measurements a device keeps when nobody listens and indicates on reconnection
KEPT = frozenset({BLOOD_PRESSURE_MEASUREMENT, TEMPERATURE_MEASUREMENT, WEIGHT_MEASUREMENT})
# notified as they come and lost when nobody listens (battery level included)
STREAMED = frozenset({HEART_RATE_MEASUREMENT, PLX_CONTINUOUS_MEASUREMENT, BATTERY_LEVEL})

# Record Access Control Point (GATT Specification Supplement, RACP)
RACP_REPORT_STORED = 0x01
RACP_DELETE_STORED = 0x02
RACP_REPORT_NUMBER = 0x04
RACP_NUMBER_RESPONSE = 0x05
RACP_RESPONSE = 0x06
OP_ALL = 0x01
OP_GREATER_OR_EQUAL = 0x03
OP_LAST = 0x06
FILTER_SEQUENCE = 0x01
RACP_SUCCESS = 0x01
RACP_NOT_SUPPORTED = 0x02
RACP_INVALID_OPERATOR = 0x03
RACP_OPERATOR_NOT_SUPPORTED = 0x04
RACP_NO_RECORDS = 0x06
RACP_PROCEDURE_IN_PROGRESS = 0x81
ATT_CCCD_IMPROPERLY_CONFIGURED = 0xFD


def ble_address(device_id: str) -> str:
    """The static random address a simulated device goes by, stable for its id."""
    raw = bytearray(hashlib.sha256(device_id.encode()).digest()[:6])
    raw[0] |= 0xC0  # static random: the two most significant bits set
    return ":".join(f"{b:02X}" for b in raw)


def exact_time_256(wall: datetime) -> bytes:
    """Current Time (0x2A2B): Date Time, day of week (1 = Monday), fractions, reason."""
    return date_time(wall) + bytes((wall.isoweekday(), 0, 0))


def read_exact_time_256(value: bytes) -> datetime:
    if len(value) < 7:
        raise ValueError("Current Time too short")
    year = int.from_bytes(value[:2], "little")
    return datetime(year, value[2], value[3], value[4], value[5], value[6])


class SimPeripheral:
    """One simulated device on the virtual radio."""

    def __init__(
        self,
        device: Device,
        device_id: str,
        kind: DeviceKind,
        *,
        wall_clock: Callable[[], datetime],
        clock_offset_s: float = 0.0,
    ) -> None:
        self.device = device
        self.id = device_id
        self.kind = kind
        self.wall_clock = wall_clock  # the true local time now (simulated)
        self.clock_offset = timedelta(seconds=clock_offset_s)
        self.in_range = True
        self.connection: Connection | None = None
        self._link_gone = asyncio.Event()  # the current connection ended
        self.answer_delay_s = 0.0  # a slow device: its clock is read that much later
        # (characteristic, value as sent, the measurement), oldest first
        self.kept: deque[tuple[int, bytes, EmittedFrame]] = deque()
        # the meter's memory: (sequence number, value as sent, the measurement)
        self.glucose_records: list[tuple[int, bytes, EmittedFrame]] = []
        # the oximeter's stored spot checks (taken while no hub listened), oldest first
        self.spot_records: list[tuple[bytes, EmittedFrame]] = []
        self._spot_reported = 0  # how many of them were reported on this connection
        self.battery_pct = 100
        self.notified = 0
        # every value the gateway received, and the continuous values taken while nobody
        # listened (lost, as on a real device)
        self.sent: list[tuple[int, bytes, EmittedFrame]] = []
        self.sent_at_ms: list[int] = []  # when each of them went out (wall clock, epoch ms)
        self.lost: list[tuple[int, bytes, EmittedFrame]] = []
        self.connections = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.clock_sets = 0
        self._pump_wake = asyncio.Event()
        self._racp_busy = False
        self._glucose_sent_upto = -1  # highest sequence number sent in this connection
        self._next_seq = 1  # the glucose meter's next record number
        service_uuid, chars, secure = SERVICES[kind]
        self.secure = secure
        self.chars: dict[int, Characteristic[Any]] = {}
        cccd_perm = P.READABLE | P.WRITEABLE
        if secure:
            cccd_perm |= P.WRITE_REQUIRES_ENCRYPTION
        services: list[Service] = []
        main_chars: list[Characteristic[Any]] = []
        for uuid, prop in chars:
            c: Characteristic[Any] = Characteristic(UUID.from_16_bits(uuid), prop, P(0), b"")
            c.descriptors = [
                Descriptor(
                    gatt.GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
                    cccd_perm,
                    device.gatt_server.make_descriptor_value(c),
                )
            ]
            c.on(Characteristic.EVENT_SUBSCRIPTION, self._on_subscription)
            self.chars[uuid] = c
            main_chars.append(c)
        if kind in (DeviceKind.GLUCOSE_METER, DeviceKind.OXIMETER):
            if kind is DeviceKind.GLUCOSE_METER:
                feature = Characteristic(
                    UUID.from_16_bits(GLUCOSE_FEATURE), R.READ, P.READABLE, b"\x00\x00"
                )
            else:
                feature = Characteristic(
                    UUID.from_16_bits(PLX_FEATURES),
                    R.READ,
                    P.READABLE,
                    PLX_SPOT_CHECK_STORAGE.to_bytes(2, "little"),
                )
            racp_perm = P.WRITEABLE | (P.WRITE_REQUIRES_ENCRYPTION if secure else P(0))
            racp: Characteristic[Any] = Characteristic(
                UUID.from_16_bits(RACP),
                R.WRITE | R.INDICATE,
                racp_perm,
                CharacteristicValue(write=self._on_racp_write),
            )
            racp.descriptors = [
                Descriptor(
                    gatt.GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
                    cccd_perm,
                    device.gatt_server.make_descriptor_value(racp),
                )
            ]
            self.chars[RACP] = racp
            main_chars += [feature, racp]
        services.append(Service(UUID.from_16_bits(service_uuid), main_chars))
        battery: Characteristic[Any] = Characteristic(
            UUID.from_16_bits(BATTERY_LEVEL),
            R.READ | R.NOTIFY,
            P.READABLE,
            CharacteristicValue(read=lambda _c: bytes((self.battery_pct,))),
        )
        self.chars[BATTERY_LEVEL] = battery
        services.append(Service(UUID.from_16_bits(BATTERY_SERVICE), [battery]))
        services.append(
            DeviceInformationService(
                manufacturer_name="postop simulated devices",
                model_number=f"SIM-{kind.value}",
                serial_number=device_id,
                firmware_revision="1.4.2",
            )
        )
        current_time: Characteristic[Any] = Characteristic(
            UUID.from_16_bits(CURRENT_TIME),
            R.READ | R.WRITE | R.NOTIFY,
            P.READABLE | P.WRITEABLE | (P.WRITE_REQUIRES_ENCRYPTION if secure else P(0)),
            CharacteristicValue(read=self._read_time, write=self._write_time),
        )
        services.append(Service(UUID.from_16_bits(CURRENT_TIME_SERVICE), [current_time]))
        device.add_services(services)
        device.on(Device.EVENT_CONNECTION, self._on_connection)
        self._service_uuid = service_uuid

    def stop(self) -> None:
        for t in self._tasks:
            t.cancel()

    # -- radio ------------------------------------------------------------------
    def advertising_data(self) -> bytes:
        return bytes(
            AdvertisingData(
                [
                    (AdvertisingData.FLAGS, bytes((0x06,))),
                    (
                        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                        self._service_uuid.to_bytes(2, "little"),
                    ),
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self.id[:20].encode()),
                ]
            )
        )

    async def start(self) -> None:
        await self.device.power_on()
        self._tasks.append(
            asyncio.get_running_loop().create_task(self._pump(), name=f"pump-{self.id}")
        )
        await self._advertise()

    async def _advertise(self) -> None:
        if self.in_range and self.connection is None:
            await self.device.start_advertising(
                advertising_data=self.advertising_data(),
                own_address_type=hci.OwnAddressType.RANDOM,
                auto_restart=False,
                advertising_interval_min=20,
                advertising_interval_max=20,
            )

    def _on_connection(self, connection: Connection) -> None:
        log.info("%s: connected to %s", self.id, connection.peer_address)
        self.connection = connection
        self.connections += 1
        link_gone = self._link_gone = asyncio.Event()

        def gone(_reason: int) -> None:
            log.info("%s: disconnected", self.id)
            link_gone.set()
            self.connection = None
            self._racp_busy = False
            self._glucose_sent_upto = -1
            self._spot_reported = 0
            if self.in_range:
                asyncio.get_running_loop().create_task(self._advertise())

        connection.on(Connection.EVENT_DISCONNECTION, gone)

    async def set_in_range(self, in_range: bool) -> None:
        """Out of range: the link drops and the device stops advertising; back: it
        advertises again."""
        self.in_range = in_range
        if in_range:
            await self._advertise()
            return
        if self.device.is_advertising:
            await self.device.stop_advertising()
        if self.connection is not None:
            await self.connection.disconnect()

    async def forget_bonds(self) -> None:
        """The device lost its bonds (factory reset, battery pulled): the next
        encryption with the old keys fails."""
        if self.device.keystore is not None:
            await self.device.keystore.delete_all()

    async def factory_reset(self) -> None:
        """Bonds and memory gone: a meter numbers its records from 1 again."""
        await self.forget_bonds()
        self.glucose_records.clear()
        self.spot_records.clear()
        self.kept.clear()
        self._next_seq = 1

    # -- current time -----------------------------------------------------------
    def device_clock(self) -> datetime:
        return self.wall_clock() + self.clock_offset

    async def _read_time(self, _connection: Connection) -> bytes:
        if self.answer_delay_s:
            await asyncio.sleep(self.answer_delay_s)
        return exact_time_256(self.device_clock().replace(microsecond=0))

    def _write_time(self, _connection: Connection, value: bytes) -> None:
        try:
            written = read_exact_time_256(value)
        except ValueError as exc:
            raise att.ATT_Error(att.ErrorCode.VALUE_NOT_ALLOWED) from exc
        offset = round((written - self.wall_clock()).total_seconds())
        # a clock is set to the second: a difference of a second or two is no difference
        self.clock_offset = timedelta(seconds=offset if abs(offset) > 2 else 0)
        self.clock_sets += 1
        log.info(
            "%s: clock set, now %+.0f s from true time", self.id, self.clock_offset.total_seconds()
        )

    # -- measurements -----------------------------------------------------------
    def _stamped(self, frame: EmittedFrame) -> bytes:
        """The value as this device sends it: Date Times from its own (maybe wrong) clock."""
        m = frame.measurement
        if m is None or not self.clock_offset:
            return frame.payload
        for name in ("timestamp", "base_time"):
            stamp = getattr(m, name, None)
            if isinstance(stamp, datetime):
                return encode(dataclasses.replace(m, **{name: stamp + self.clock_offset}))[1]  # type: ignore[arg-type]
        return frame.payload

    def _subscribed(self, uuid: int) -> bool:
        c = self.chars[uuid]
        conn = self.connection
        if conn is None:
            return False
        cccd = self.device.gatt_server.subscribers.get(conn, {})
        value = cccd.get(c.handle, b"\x00\x00")
        return bool(value and value[0] & 0x03)

    def holds_unsent(self) -> bool:
        """Whether something it measured has not reached a gateway yet: a kept reading,
        a stored spot check, a glucose record never sent, or a RACP procedure under way."""
        if self.kept or self.spot_records or self._racp_busy:
            return True
        sent = {id(frame) for uuid, _v, frame in self.sent if uuid == GLUCOSE_MEASUREMENT}
        return any(id(frame) not in sent for _seq, _v, frame in self.glucose_records)

    def listened(self) -> bool:
        """Connected, with every streamed characteristic subscribed: what it measures
        now reaches the gateway."""
        return self.connection is not None and all(
            self._subscribed(uuid) for uuid in self.chars if uuid in STREAMED
        )

    async def deliver(self, frame: EmittedFrame, *, stale: bool = False) -> None:
        """A measurement the device just took; ``stale`` when its time is long past (a
        backfill): a continuous value is then lost, as nobody could hear it when it was
        taken, and a kept one waits in the device's memory as usual."""
        assert frame.char_uuid is not None
        value = self._stamped(frame)
        uuid = frame.char_uuid
        if stale and uuid in STREAMED:
            if uuid == BATTERY_LEVEL:
                self.battery_pct = value[0]
            self.lost.append((uuid, value, frame))
            return
        if uuid == BATTERY_LEVEL:
            self.battery_pct = value[0]
            listening = self._subscribed(BATTERY_LEVEL)
            if not (listening and await self._send(uuid, value, frame, indicate=False)):
                self.lost.append((uuid, value, frame))
            return
        if uuid == GLUCOSE_MEASUREMENT:
            # the meter numbers its records in the order it takes them, from 1 after a reset
            seq = self._next_seq
            self._next_seq = self._next_seq % 0xFFFF + 1
            value = value[:1] + seq.to_bytes(2, "little") + value[3:]
            self.glucose_records.append((seq, value, frame))
            # during a RACP procedure the new record goes after the stored ones
            if self._subscribed(GLUCOSE_MEASUREMENT) and not self._racp_busy:
                await self._send_glucose(seq, value, frame)
            return
        if uuid == PLX_SPOT_CHECK_MEASUREMENT:
            # indicated at once to a hub that listens, else stored for RACP; during a
            # RACP procedure it is stored and goes out at the end of the report
            if not (
                self._subscribed(uuid)
                and not self._racp_busy
                and await self._send(uuid, value, frame, indicate=True)
            ):
                self.spot_records.append((value, frame))
            return
        if uuid in KEPT:
            self.kept.append((uuid, value, frame))
            self._pump_wake.set()
            return
        # continuous: lost when nobody listens
        if not (self._subscribed(uuid) and await self._send(uuid, value, frame, indicate=False)):
            self.lost.append((uuid, value, frame))

    async def _send(
        self, uuid: int, value: bytes, frame: EmittedFrame | None, *, indicate: bool
    ) -> bool:
        conn = self.connection
        if conn is None:
            return False
        # bumble's server waits 30 s for the confirmation of an indication sent just before
        # the link dropped (it does not fail it on disconnection): a real device knows its
        # link is gone, so the wait ends with the link
        link_gone = self._link_gone
        if indicate:
            sending = asyncio.ensure_future(
                self.device.indicate_subscriber(conn, self.chars[uuid], value)
            )
        else:
            sending = asyncio.ensure_future(
                self.device.notify_subscriber(conn, self.chars[uuid], value)
            )
        gone = asyncio.ensure_future(link_gone.wait())
        try:
            await asyncio.wait((sending, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not sending.done():
            sending.cancel()
            log.info("%s: link lost while sending 0x%04X", self.id, uuid)
            return False
        if (exc := sending.exception()) is not None:  # the value stays kept
            log.info("%s: could not send 0x%04X: %s", self.id, uuid, exc)
            return False
        self.notified += 1
        if frame is not None:
            self.sent.append((uuid, value, frame))
            self.sent_at_ms.append(time.time_ns() // 1_000_000)
        return True

    def _on_subscription(self, _bearer: object, notify: bool, indicate: bool) -> None:
        self._pump_wake.set()

    async def _pump(self) -> None:
        """Kept measurements, oldest first, each removed once the gateway confirmed it."""
        while True:
            await self._pump_wake.wait()
            self._pump_wake.clear()
            while self.kept and self._subscribed(self.kept[0][0]):
                head = self.kept[0]
                if not await self._send(head[0], head[1], head[2], indicate=True):
                    break
                if self.kept and self.kept[0] is head:
                    self.kept.popleft()

    # -- record access control point (glucose) -----------------------------------
    def _on_racp_write(self, connection: Connection, value: bytes) -> None:
        if not self._subscribed(RACP):
            raise att.ATT_Error(ATT_CCCD_IMPROPERLY_CONFIGURED)
        if self._racp_busy:
            raise att.ATT_Error(RACP_PROCEDURE_IN_PROGRESS)
        self._racp_busy = True
        asyncio.get_running_loop().create_task(self._racp(bytes(value)))

    async def _send_glucose(self, seq: int, value: bytes, frame: EmittedFrame) -> bool:
        if not await self._send(GLUCOSE_MEASUREMENT, value, frame, indicate=False):
            return False
        self._glucose_sent_upto = max(self._glucose_sent_upto, seq)
        return True

    async def _racp(self, request: bytes) -> None:
        try:
            await self._racp_procedure(request)
        finally:
            self._racp_busy = False
        # records taken during the procedure, held back so the stored ones came first
        for seq, value, frame in list(self.glucose_records):
            if seq > self._glucose_sent_upto and self._subscribed(GLUCOSE_MEASUREMENT):
                await self._send_glucose(seq, value, frame)

    async def _racp_procedure(self, request: bytes) -> None:
        if self.kind is DeviceKind.OXIMETER:
            await self._plx_racp_procedure(request)
            return
        if len(request) < 2:
            await self._racp_reply(request[:1] or b"\x00", RACP_INVALID_OPERATOR)
            return
        opcode, operator = request[0], request[1]
        if opcode not in (RACP_REPORT_STORED, RACP_REPORT_NUMBER):
            await self._racp_reply(request[:1], RACP_NOT_SUPPORTED)
            return
        if operator == OP_ALL:
            low = 0
        elif operator == OP_LAST:
            low = self.glucose_records[-1][0] if self.glucose_records else 0x10000
        elif (
            operator == OP_GREATER_OR_EQUAL and len(request) >= 5 and request[2] == FILTER_SEQUENCE
        ):
            low = int.from_bytes(request[3:5], "little")
        else:
            await self._racp_reply(request[:1], RACP_OPERATOR_NOT_SUPPORTED)
            return
        matching = [r for r in self.glucose_records if r[0] >= low]
        if opcode == RACP_REPORT_NUMBER:
            body = bytes((RACP_NUMBER_RESPONSE, 0x00)) + len(matching).to_bytes(2, "little")
            self._racp_busy = False
            await self._send(RACP, body, None, indicate=True)
            return
        if not matching:
            await self._racp_reply(request[:1], RACP_NO_RECORDS)
            return
        reported: set[int] = set()
        while batch := [r for r in self.glucose_records if r[0] >= low and r[0] not in reported]:
            for seq, value, frame in batch:  # records taken meanwhile follow in the report
                if not await self._send_glucose(seq, value, frame):
                    return
                reported.add(seq)
        await self._racp_reply(request[:1], RACP_SUCCESS)

    async def _plx_racp_procedure(self, request: bytes) -> None:
        """PLX service: report, count or delete the stored spot checks; 'all records' is
        the only operator it knows."""
        if len(request) < 2:
            await self._racp_reply(request[:1] or b"\x00", RACP_INVALID_OPERATOR)
            return
        opcode, operator = request[0], request[1]
        if opcode not in (RACP_REPORT_STORED, RACP_REPORT_NUMBER, RACP_DELETE_STORED):
            await self._racp_reply(request[:1], RACP_NOT_SUPPORTED)
            return
        if operator != OP_ALL:
            await self._racp_reply(request[:1], RACP_OPERATOR_NOT_SUPPORTED)
            return
        if opcode == RACP_REPORT_NUMBER:
            body = bytes((RACP_NUMBER_RESPONSE, 0x00)) + len(self.spot_records).to_bytes(
                2, "little"
            )
            self._racp_busy = False
            await self._send(RACP, body, None, indicate=True)
            return
        if opcode == RACP_DELETE_STORED:
            # what was reported on this link: one taken during the delete stays stored
            del self.spot_records[: self._spot_reported]
            self._spot_reported = 0
            await self._racp_reply(request[:1], RACP_SUCCESS)
            return
        if not self.spot_records:
            await self._racp_reply(request[:1], RACP_NO_RECORDS)
            return
        reported = 0
        while reported < len(self.spot_records):  # spot checks taken meanwhile follow
            value, frame = self.spot_records[reported]
            if not await self._send(PLX_SPOT_CHECK_MEASUREMENT, value, frame, indicate=True):
                return  # the link dropped: all stay stored
            reported += 1
        self._spot_reported = reported
        await self._racp_reply(request[:1], RACP_SUCCESS)

    async def _racp_reply(self, opcode: bytes, code: int) -> None:
        self._racp_busy = False  # the procedure is over when its response goes out
        reply = bytes((RACP_RESPONSE, 0x00, opcode[0], code))
        await self._send(RACP, reply, None, indicate=True)


def device_configuration(device_id: str) -> DeviceConfiguration:
    config = DeviceConfiguration()
    config.name = device_id[:20]
    config.address = hci.Address(ble_address(device_id), hci.Address.RANDOM_DEVICE_ADDRESS)
    config.irk = hashlib.sha256(b"irk:" + device_id.encode()).digest()[:16]
    return config
