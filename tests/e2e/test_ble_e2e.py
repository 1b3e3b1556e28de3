"""Real Bluetooth LE end to end, without Bluetooth hardware: the simulator's devices are
bumble peripherals on a virtual radio, the gateway process is a bumble central on a
virtual controller of that radio, then Mosquitto, ingest and PostgreSQL as in production.

Every reading a device sent is stored exactly once, with its value and its time: the
device's own Date Time when it has one, the gateway's reception time otherwise."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from firmware_sim.ble_kit import BleKit, BleSimulation
from firmware_sim.ble_peripheral import ble_address
from firmware_sim.devices import DeviceKind

from postop.ports import free_port
from tests.conftest import Broker
from tests.e2e.ble_support import (
    PLX_SPOT_CHECK,
    assert_stored_exactly,
    ble_gateway,
    expected_rows,
    keep_artifacts,
    make_kit,
    open_live,
    provision,
    publish_config,
    simulation,
    wait_all_kept_sent,
    wait_stored,
)
from tests.stack import ServiceProcess, wait_for

# minutes long: scheduled before the short files (tests/conftest.py)
pytestmark = pytest.mark.slow

ALL_KINDS = (
    DeviceKind.OXIMETER,
    DeviceKind.BP_CUFF,
    DeviceKind.THERMOMETER,
    DeviceKind.SCALE,
    DeviceKind.HR_PATCH,
    DeviceKind.GLUCOSE_METER,
)


@pytest.fixture
def running(
    request: pytest.FixtureRequest,
) -> Iterator[list[tuple[BleSimulation | None, ServiceProcess | None]]]:
    """Stops what a test started; when the test failed, keeps the gateway's HCI trace
    (btsnoop) and log in the test artifacts (the work folder is deleted)."""
    started: list[tuple[BleSimulation | None, ServiceProcess | None]] = []
    failed_before = request.session.testsfailed
    yield started
    failed = request.session.testsfailed > failed_before  # counted before the teardown
    for sim, gw in started:
        if gw is not None:
            gw.stop()
            print(f"--- gateway log (tail) ---\n{gw.log()[-6000:]}")
            if failed:
                kept = keep_artifacts(request.node.name, gw.workdir)
                print(f"--- gateway HCI trace (btsnoop, open with Wireshark) kept in {kept}")
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
    open_live(sim, live_s)

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
    wait_stored(db, expected)
    assert_stored_exactly(db, expected)
    # the kept records of the day before (BP, temperature, weight, glucose) came in too
    assert sum(1 for _, _, t in expected.exact if t < kit.start.timestamp() * 1000 + 86_400_000)
    # bonds only with the secure devices, in a private file
    bonds = workdir / "gw" / "bonds" / "bonds.json"
    assert bonds.exists()
    assert os.stat(bonds).st_mode & 0o777 == 0o600
    assert "paired and bonded" in gw.log()
    # Device Information, battery and last contact reach the backend through the status
    wait_for(lambda: len(device_info(db)) == len(ALL_KINDS), 30, "the devices' information")
    for device_id, (model, serial, firmware, battery, last_seen) in device_info(db).items():
        assert model == f"SIM-{device_id.removesuffix('-ble-all')}"
        assert serial == device_id
        assert firmware == "1.4.2"
        assert battery is not None
        assert last_seen is not None


def device_info(db: str) -> dict[str, tuple[object, ...]]:
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT device_id, model, serial, firmware_revision, battery_pct, last_seen"
            " FROM device_info"
        ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_out_of_range_for_two_hours_then_back_nothing_lost_nothing_doubled(
    db: str,
    broker: Broker,
    ingest: ServiceProcess,
    workdir: Path,
    running: list[tuple[BleSimulation | None, ServiceProcess | None]],
) -> None:
    """Two hours out of range: the cuff, thermometer and scale indicate what they kept,
    the meter and the oximeter (its stored spot checks) answer RACP; then a short second
    absence: only what is new comes, the meter is asked only for records after the last
    one the gateway holds, and the oximeter's stored spot checks, deleted once fetched,
    come once."""
    live_s = 45
    kinds = (
        DeviceKind.BP_CUFF,
        DeviceKind.THERMOMETER,
        DeviceKind.SCALE,
        DeviceKind.GLUCOSE_METER,
        DeviceKind.OXIMETER,
    )
    # spot checks every 8 s for 15 min: the second absence, however late the live part
    # opens, sees one taken while away
    kit, now = make_kit("ble-away", kinds, backfill_h=2, live_s=live_s, dense_s=900)
    gateway_id = "gw-ble-away"
    password = provision(db, broker, gateway_id, kit)
    hci_port = free_port()
    away = frozenset(kit.device_ids())
    sim = simulation([BleKit(kit, hci_port, out_of_range=away)], kit.start, now, live_s)
    running.append((sim, None))
    sim.start()
    publish_config(broker, gateway_id, kit.device_ids())
    gw = ble_gateway(gateway_id, password, broker, workdir / "gw", hci_port)
    running.append((None, gw))
    gw.start()
    wait_for(sim.caught_up.is_set, 60, "two simulated hours out of range")
    wait_for(lambda: "serving" in gw.log(), 30, "the gateway to read its configuration")
    peripherals = sim.peripherals
    kept_while_away = sum(len(p.kept) for p in peripherals.values())
    meter = next(p for p in peripherals.values() if p.kind is DeviceKind.GLUCOSE_METER)
    stored_in_meter = len(meter.glucose_records)
    oximeter = next(p for p in peripherals.values() if p.kind is DeviceKind.OXIMETER)
    assert kept_while_away > 20
    assert stored_in_meter > 20
    assert len(oximeter.spot_records) > 20
    assert all(p.connections == 0 for p in peripherals.values())

    for p in peripherals.values():  # back in range
        sim.call(p.set_in_range(True))
    wait_all_kept_sent(sim)
    wait_for(lambda: len(meter.sent) >= stored_in_meter, 60, "the meter's stored records")
    open_live(sim, live_s)

    for p in peripherals.values():  # a second, short absence while measuring
        sim.call(p.set_in_range(False))
    wait_for(lambda: bool(oximeter.spot_records), 60, "a spot check stored while away")
    time.sleep(2)
    assert sum(len(p.kept) for p in peripherals.values()) > 0
    for p in peripherals.values():
        sim.call(p.set_in_range(True))

    wait_for(sim.streamed.is_set, live_s + 120, "the devices' measurements")
    wait_all_kept_sent(sim)
    wait_for(lambda: len(meter.sent) >= len(meter.glucose_records), 60, "every glucose record")
    expected = expected_rows(kit, peripherals)
    wait_stored(db, expected)
    assert_stored_exactly(db, expected)
    # RACP 'greater than or equal to last + 1': the meter sent every record once, but for
    # its last record, sent again to each reconnection that asked for it (reset check)
    sent_seqs = [int.from_bytes(v[1:3], "little") for u, v, _ in meter.sent if u == 0x2A18]
    assert len(set(sent_seqs)) == len(meter.glucose_records)
    assert len(sent_seqs) - len(set(sent_seqs)) <= meter.connections - 1
    assert all(p.connections >= 2 for p in peripherals.values())
    # PLX RACP 'report all' then 'delete': every spot check the oximeter took reached the
    # gateway once (by RACP when stored, by indication when taken in range)
    spot_checks = [f for f in kit.emitted if f.char_uuid == PLX_SPOT_CHECK]
    spot_sent = [f for u, _, f in oximeter.sent if u == PLX_SPOT_CHECK]
    assert len(spot_sent) == len({id(f) for f in spot_sent}) == len(spot_checks)
    assert not oximeter.spot_records


def test_lost_bond_wrong_clock_and_a_neighbours_device(
    db: str,
    broker: Broker,
    ingest: ServiceProcess,
    workdir: Path,
    running: list[tuple[BleSimulation | None, ServiceProcess | None]],
) -> None:
    """The cuff forgets its bond: the gateway pairs again and goes on. The glucose meter
    is reset (bonds and memory gone, its records numbered from 1 again): paired again, and
    its new records are not mistaken for ones already held. The thermometer's clock is two
    hours fast: set through Current Time, its readings carry true times, and the backend
    learns how far off it was. A neighbour's cuff advertises in range: it is never
    connected, never paired."""
    live_s = 50
    kinds = (DeviceKind.BP_CUFF, DeviceKind.THERMOMETER, DeviceKind.GLUCOSE_METER)
    kit, now = make_kit("ble-home", kinds, backfill_h=0, live_s=live_s)
    neighbour, _ = make_kit("ble-next-door", (DeviceKind.BP_CUFF,), backfill_h=0, live_s=live_s)
    cuff_id, thermometer_id, meter_id = kit.device_ids()
    gateway_id = "gw-ble-home"
    password = provision(db, broker, gateway_id, kit)
    hci_port = free_port()
    sim = simulation(
        [
            BleKit(kit, hci_port, clock_offsets_s={thermometer_id: 7200.0}),
            BleKit(neighbour, free_port()),
        ],
        kit.start,
        now,
        live_s,
    )
    running.append((sim, None))
    sim.start()
    publish_config(broker, gateway_id, kit.device_ids())
    gw = ble_gateway(gateway_id, password, broker, workdir / "gw", hci_port)
    running.append((None, gw))
    gw.start()
    open_live(sim, live_s, kit.device_ids())  # the neighbour's cuff is never connected
    cuff = sim.peripherals[cuff_id]
    thermometer = sim.peripherals[thermometer_id]
    wait_for(lambda: len(cuff.sent) >= 2, 60, "the cuff's first readings")
    assert thermometer.clock_sets >= 1
    assert not thermometer.clock_offset

    meter = sim.peripherals[meter_id]
    wait_for(lambda: len(meter.sent) >= 2, 60, "the meter's first records")

    sim.call(cuff.forget_bonds())  # its bond with the gateway is gone
    sim.call(meter.factory_reset())
    for p in (cuff, meter):
        sim.call(p.set_in_range(False))
        sim.call(p.set_in_range(True))
    wait_for(lambda: "forgetting the bond" in gw.log(), 60, "the gateway to see the lost bond")
    for device_id in (cuff_id, meter_id):
        wait_for(
            lambda d=device_id: gw.log().count(f"{d}: paired and bonded") >= 2,  # type: ignore[misc]
            60,
            f"{device_id} paired again",
        )
    wait_for(lambda: "meter reset, asking for all" in gw.log(), 60, "the meter reset seen")

    wait_for(sim.streamed.is_set, live_s + 120, "the devices' measurements")
    wait_all_kept_sent(sim, kit.device_ids())
    expected = expected_rows(kit, {cuff_id: cuff, thermometer_id: thermometer, meter_id: meter})
    sent_after_repair = len(cuff.sent)
    assert sent_after_repair > 4
    wait_stored(db, expected)
    assert_stored_exactly(db, expected)  # the thermometer's readings at their true times
    neighbours_cuff = sim.peripherals[neighbour.device_ids()[0]]
    assert neighbours_cuff.connections == 0
    bonds = (workdir / "gw" / "bonds" / "bonds.json").read_text()
    assert ble_address(neighbour.device_ids()[0]) not in bonds.upper()
    assert ble_address(cuff_id) in bonds.upper()
    # the cuff leaves the kit: the gateway drops it and forgets its bond
    publish_config(broker, gateway_id, [thermometer_id, meter_id])
    wait_for(lambda: f"forgot the bond with {ble_address(cuff_id)}" in gw.log(), 30, "unpairing")
    bonds = (workdir / "gw" / "bonds" / "bonds.json").read_text()
    assert ble_address(cuff_id) not in bonds.upper()
    assert ble_address(meter_id) in bonds.upper()
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT clock_skew_s FROM device_info WHERE device_id = %s", (thermometer_id,)
        ).fetchone()
    assert row is not None
    assert abs(row[0] - 7200) <= 3
