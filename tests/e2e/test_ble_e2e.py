"""Real Bluetooth LE end to end, without Bluetooth hardware: the simulator's devices are
bumble peripherals on a virtual radio, the gateway process is a bumble central on a
virtual controller of that radio, then Mosquitto, ingest and PostgreSQL as in production.

Every reading a device sent is stored exactly once, with its value and its time: the
device's own Date Time when it has one, the gateway's reception time otherwise."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from firmware_sim.ble_kit import BleKit, BleSimulation
from firmware_sim.devices import DeviceKind

from postop.ports import free_port
from tests.conftest import Broker
from tests.e2e.ble_support import (
    assert_stored_exactly,
    ble_gateway,
    expected_rows,
    make_kit,
    provision,
    publish_config,
    simulation,
    stored_rows,
    wait_all_kept_sent,
)
from tests.stack import ServiceProcess, wait_for

ALL_KINDS = (
    DeviceKind.OXIMETER,
    DeviceKind.BP_CUFF,
    DeviceKind.THERMOMETER,
    DeviceKind.SCALE,
    DeviceKind.HR_PATCH,
    DeviceKind.GLUCOSE_METER,
)


@pytest.fixture
def running() -> Iterator[list[tuple[BleSimulation | None, ServiceProcess | None]]]:
    """Stops what a test started, and prints where the gateway's HCI trace is."""
    started: list[tuple[BleSimulation | None, ServiceProcess | None]] = []
    yield started
    for sim, gw in started:
        if gw is not None:
            gw.stop()
            print(f"--- gateway log (tail) ---\n{gw.log()[-6000:]}")
            trace = gw.workdir / "gateway-hci.btsnoop"
            if trace.exists():
                print(f"--- gateway HCI trace (btsnoop, open with Wireshark): {trace}")
        if sim is not None:
            sim.stop()


def test_every_device_type_over_ble_stored_exactly_once(
    db: str,
    broker: Broker,
    ingest: ServiceProcess,
    workdir: Path,
    running: list[tuple[BleSimulation | None, ServiceProcess | None]],
) -> None:
    live_s = 40
    kit, now = make_kit("ble-all", ALL_KINDS, backfill_h=26, live_s=live_s)
    gateway_id = "gw-ble-all"
    password = provision(db, broker, gateway_id, kit)
    hci_port = free_port()
    sim = simulation([BleKit(kit, hci_port)], kit.start, now, live_s)
    running.append((sim, None))
    sim.start()
    publish_config(broker, gateway_id, kit.device_ids())
    gw = ble_gateway(gateway_id, password, broker, workdir / "gw", hci_port)
    running.append((None, gw))
    gw.start()

    wait_for(sim.streamed.is_set, live_s + 120, "the devices' measurements")
    wait_all_kept_sent(sim)
    expected = expected_rows(kit, sim.peripherals)
    assert expected.implausible == 0
    assert {m for _, m, _ in expected.exact} >= {
        "bp_systolic_mmhg",
        "temp_c",
        "weight_kg",
        "glucose_mmol_l",
    }
    assert {m for _, m in expected.received} >= {"heart_rate_bpm", "battery_pct"}
    wait_for(lambda: len(stored_rows(db)) >= expected.count(), 60, f"{expected.count()} rows")
    assert_stored_exactly(db, expected)
    # the kept records of the day before (BP, temperature, weight, glucose) came in too
    assert sum(1 for _, _, t in expected.exact if t < kit.start.timestamp() * 1000 + 86_400_000)
    # bonds only with the secure devices, in a private file
    bonds = workdir / "gw" / "bonds" / "bonds.json"
    assert bonds.exists()
    assert os.stat(bonds).st_mode & 0o777 == 0o600
    assert "paired and bonded" in gw.log()
