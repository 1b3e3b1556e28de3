"""The gateway's BLE pieces that need no broker nor database: its configuration downlink,
the Current Time value, the bond file's permissions, and, over the real bumble stack on
a virtual radio in this process, that subscribing again never doubles a value."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from firmware_sim.ble_kit import BleKit, BleSimulation
from firmware_sim.ble_peripheral import ble_address, read_exact_time_256
from firmware_sim.clock import SimClock
from firmware_sim.devices import DeviceKind, KitSimulator, Schedule
from pydantic import ValidationError

from gateway.central import exact_time_256
from gateway.radio import LinkLost
from gateway.radio_bumble import BumbleRadio, PrivateJsonKeyStore
from postop.ports import free_port
from vitals.gateway_config import GatewayConfig


def test_configuration_lists_devices_and_ignores_what_it_does_not_know() -> None:
    cfg = GatewayConfig.model_validate_json(
        '{"devices": [{"id": "bp-cuff-p1", "address": "C4:93:98:DB:C9:E5", "kind": "bp-cuff",'
        ' "pin": "later"}], "upload_batch_max": 500, "new_setting": true}'
    )
    assert cfg.upload_batch_max == 500
    assert cfg.devices is not None
    assert [(d.id, d.address) for d in cfg.devices] == [("bp-cuff-p1", "C4:93:98:DB:C9:E5")]
    assert GatewayConfig.model_validate_json('{"upload_batch_max": 10}').devices is None
    with pytest.raises(ValidationError):
        GatewayConfig.model_validate_json('{"devices": [{"id": "x1y", "address": "C4:93"}]}')


def test_current_time_value_carries_the_local_wall_clock_and_day_of_week() -> None:
    wall = datetime(2026, 11, 30, 7, 5, 9, 500_000)  # a Monday
    value = exact_time_256(wall)
    assert value.hex() == "ea070b1e070509" + "01" + "80" + "01"
    assert read_exact_time_256(value) == wall.replace(microsecond=0)


def test_bonds_are_written_private(tmp_path: Path) -> None:
    path = tmp_path / "bonds" / "bonds.json"
    store = PrivateJsonKeyStore("gw-test", str(path))
    asyncio.run(store.save({"gw-test": {"C4:93:98:DB:C9:E5": {"address_type": 1}}}))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_subscribing_twice_with_the_same_callback_delivers_each_value_once(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    kit = KitSimulator(
        "unit-hr", 1, now, (DeviceKind.HR_PATCH,), schedule=Schedule(patch_hr_interval_s=1)
    )
    port = free_port()
    sim = BleSimulation([BleKit(kit, port)], SimClock(now, 1.0)).start()
    received: list[bytes] = []

    async def central() -> None:
        radio = BumbleRadio(f"tcp-client:127.0.0.1:{port}", "gw-unit", tmp_path / "b.json")
        await radio.open()
        address = ble_address(kit.device_ids()[0])
        for _ in range(100):
            if radio.seen(address, 1.0):
                break
            await asyncio.sleep(0.05)
        link = await radio.connect(address, 10)
        await link.discover()
        await link.subscribe(0x2A37, received.append)
        await link.subscribe(0x2A37, received.append)  # a retry, as after pairing
        await asyncio.sleep(3.5)
        await link.disconnect()
        await radio.close()

    try:
        asyncio.run(asyncio.wait_for(central(), 90))
    finally:
        sim.stop()
    patch = sim.peripherals[kit.device_ids()[0]]
    sent = [v for u, v, _ in patch.sent if u == 0x2A37]
    assert len(sent) >= 2
    assert received[: len(sent)] == sent[: len(received)]
    assert len(received) <= len(sent)  # never twice
    assert len(received) >= len(sent) - 1  # (the last may still be on its way)


def test_a_request_on_a_link_that_dropped_fails_at_once(tmp_path: Path) -> None:
    """bumble drops a request sent on a connection the host has already forgotten and
    waits its 30 s ATT timeout: the gateway's link says 'link lost' at once instead, so a
    session that goes on reading (device information after RACP) never stalls the device's
    next connection (the out-of-range e2e flake)."""
    now = datetime.now(UTC).replace(microsecond=0)
    kit = KitSimulator("unit-lost", 1, now, (DeviceKind.THERMOMETER,))
    port = free_port()
    sim = BleSimulation([BleKit(kit, port)], SimClock(now, 1.0)).start()
    thermometer = sim.peripherals[kit.device_ids()[0]]
    elapsed: dict[str, float] = {}

    async def central() -> None:
        radio = BumbleRadio(f"tcp-client:127.0.0.1:{port}", "gw-unit-lost", tmp_path / "b.json")
        await radio.open()
        address = ble_address(kit.device_ids()[0])
        for _ in range(100):
            if radio.seen(address, 1.0):
                break
            await asyncio.sleep(0.05)
        link = await radio.connect(address, 10)
        await link.discover()
        assert await link.read(0x2A29) == b"postop simulated devices"
        await asyncio.to_thread(sim.call, thermometer.set_in_range(False))
        await asyncio.wait_for(link.disconnected.wait(), 10)
        started = time.monotonic()
        with pytest.raises(LinkLost):
            await link.read(0x2A24)
        elapsed["after"] = time.monotonic() - started
        await radio.close()

    try:
        asyncio.run(asyncio.wait_for(central(), 90))
    finally:
        sim.stop()
    assert elapsed["after"] < 1.0


def test_a_request_in_flight_when_the_link_drops_fails_at_once(tmp_path: Path) -> None:
    """A read sent just before the device leaves (the device never answers it) ends when
    the link drops, not 30 s later."""
    now = datetime.now(UTC).replace(microsecond=0)
    kit = KitSimulator("unit-flight", 1, now, (DeviceKind.THERMOMETER,))
    port = free_port()
    sim = BleSimulation([BleKit(kit, port)], SimClock(now, 1.0)).start()
    thermometer = sim.peripherals[kit.device_ids()[0]]
    elapsed: dict[str, float] = {}

    async def central() -> None:
        radio = BumbleRadio(f"tcp-client:127.0.0.1:{port}", "gw-unit-flight", tmp_path / "b.json")
        await radio.open()
        address = ble_address(kit.device_ids()[0])
        for _ in range(100):
            if radio.seen(address, 1.0):
                break
            await asyncio.sleep(0.05)
        link = await radio.connect(address, 10)
        await link.discover()
        thermometer.answer_delay_s = 5.0  # the device is slow to answer this one
        started = time.monotonic()
        read = asyncio.ensure_future(link.read(0x2A2B))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(sim.call, thermometer.set_in_range(False))
        with pytest.raises(LinkLost):
            await read
        elapsed["read"] = time.monotonic() - started
        await radio.close()

    try:
        asyncio.run(asyncio.wait_for(central(), 90))
    finally:
        sim.stop()
    assert elapsed["read"] < 3.0
