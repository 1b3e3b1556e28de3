"""One gateway, six devices, a virtual radio: how long from a device's connection to its
first reading (per device type: discovery, pairing where the device asks for it,
subscriptions, Current Time, RACP), and how many readings per second the gateway takes
in when six devices come back in range with the measurements they kept.

The devices are the simulator's bumble peripherals in this process; the gateway's central
runs in its own process (``central`` sub-command) with its outbox, as in production but
without MQTT (the uplink is measured by the ingest scenarios). The radio is virtual: no
air time, no PHY limit; the figures are software cost (two host stacks, decoding, the
outbox's fsync per indication), not what a real radio allows. Counts are exact: every
kept record must be in the outbox once.

Run: ``uv run python -m bench.ble_gateway [--quick]``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from firmware_sim.ble_kit import BleKit, BleSimulation
from firmware_sim.ble_peripheral import SimPeripheral, ble_address
from firmware_sim.clock import SimClock, to_ms
from firmware_sim.devices import DeviceKind, KitSimulator, Schedule

from postop.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
KINDS = (
    DeviceKind.BP_CUFF,
    DeviceKind.THERMOMETER,
    DeviceKind.SCALE,
    DeviceKind.GLUCOSE_METER,
    DeviceKind.OXIMETER,
    DeviceKind.HR_PATCH,
)


def _schedule(every_s: int) -> Schedule:
    hours = tuple(k * every_s / 3600 for k in range(1, 86_400 // every_s))
    return Schedule(
        bp_h=hours,
        temperature_h=tuple(h + 1 / 3600 for h in hours),
        glucose_h=tuple(h + 2 / 3600 for h in hours),
        oximeter_spot_checks_h=tuple(h + 3 / 3600 for h in hours),
        jitter_min=0.0,
        oximeter_interval_s=5,
        patch_hr_interval_s=2,
    )


def _central(port: int, outbox_path: Path, devices_json: str) -> None:
    """The gateway's central alone, until SIGTERM."""
    from zoneinfo import ZoneInfo

    from gateway.central import Central
    from gateway.link_server import FrameHandler
    from gateway.outbox import Outbox
    from gateway.radio_bumble import BumbleRadio
    from vitals.gateway_config import ConfiguredDevice

    outbox = Outbox(outbox_path)
    frames = FrameHandler(outbox, ZoneInfo("UTC"), lambda: None)
    radio = BumbleRadio(f"tcp-client:127.0.0.1:{port}", "gw-bench", outbox_path.parent / "b.json")
    central = Central(radio, outbox, frames, ZoneInfo("UTC"))
    central.configure([ConfiguredDevice.model_validate(d) for d in json.loads(devices_json)])

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await central.run(stop)

    asyncio.run(run())
    outbox.close()


def _outbox_rows(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT device, count(*) FROM outbox GROUP BY device").fetchall())


def _expected_readings(p: SimPeripheral) -> int:
    return sum(len(f.values) for _, _, f in p.sent)


def _run(kit: KitSimulator, workdir: Path, now: datetime, bring_in: str) -> dict[str, Any]:
    port = free_port()
    away = frozenset(kit.device_ids())
    sim = BleSimulation(
        [BleKit(kit, port, out_of_range=away)], SimClock(now, 1.0), start_ms=to_ms(kit.start)
    ).start()
    outbox = workdir / f"outbox-{bring_in}.sqlite3"
    devices = json.dumps([{"id": d, "address": ble_address(d)} for d in kit.device_ids()])
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'firmware-sim'}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.ble_gateway", "central", str(port), str(outbox), devices],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / f"central-{bring_in}.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 120
        while not sim.caught_up.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.0)  # the central is up and scanning
        peripherals = sim.peripherals
        backlog = {
            i: len(p.kept) + len(p.glucose_records) + len(p.spot_records)
            for i, p in peripherals.items()
        }
        first_ms: dict[str, float] = {}
        if bring_in == "one by one":
            for device_id, p in peripherals.items():
                sent_before = len(p.sent)
                t0 = time.monotonic()
                sim.call(p.set_in_range(True))
                while len(p.sent) == sent_before and time.monotonic() - t0 < 60:
                    time.sleep(0.002)
                first_ms[device_id] = (time.monotonic() - t0) * 1000
            return {"first_reading_ms": first_ms, "backlog": backlog}
        t0 = time.monotonic()
        for p in peripherals.values():
            sim.call(p.set_in_range(True))
        kept_devices = [p for p in peripherals.values() if p.kind is not DeviceKind.HR_PATCH]
        while time.monotonic() - t0 < 300:
            done = all(not p.kept and not p.spot_records for p in kept_devices) and all(
                len({v for u, v, _ in p.sent if u == 0x2A18}) >= len(p.glucose_records)
                for p in kept_devices
                if p.kind is DeviceKind.GLUCOSE_METER
            )
            if done:
                break
            time.sleep(0.05)
        # every reading the devices sent must be committed (once) in the outbox
        want = sum(_expected_readings(p) for p in peripherals.values())
        while sum(_outbox_rows(outbox).values()) < want and time.monotonic() - t0 < 330:
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        got = _outbox_rows(outbox)
        return {
            "backlog_records": sum(backlog.values()),
            "readings_expected": want,
            "readings_in_outbox": sum(got.values()),
            "seconds": round(elapsed, 2),
            "readings_per_s": round(sum(got.values()) / elapsed, 1),
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        sim.stop()


def main(quick: bool = False) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="postop-bench-ble-") as tmp:
        workdir = Path(tmp)
        # a day back: every device has kept something (the scale weighs in the morning)
        small = KitSimulator(
            "bench-first", 5, now - timedelta(hours=26), KINDS, schedule=_schedule(1800)
        )
        first = _run(small, workdir, now, "one by one")
        hours, every_s = (1.0, 120) if quick else (6.0, 30)
        big = KitSimulator(
            "bench-rate", 6, now - timedelta(hours=hours), KINDS, schedule=_schedule(every_s)
        )
        rate = _run(big, workdir, now, "all at once")
    by_kind = {
        device_id.removesuffix("-bench-first"): round(ms, 1)
        for device_id, ms in first["first_reading_ms"].items()
    }
    doc = {
        "scenario": "ble-gateway",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "connect_to_first_reading_ms": by_kind,
        "six_devices_back_in_range": rate,
        "exact": rate["readings_in_outbox"] == rate["readings_expected"],
        "note": "virtual radio: software cost, no air time",
    }
    print("connect-to-first-reading (device in range -> first value received), ms:")
    for kind, ms in by_kind.items():
        print(f"  {kind:15s} {ms:8.1f}")
    print(
        f"six devices back in range: {rate['readings_in_outbox']} readings"
        f" (expected {rate['readings_expected']}) in {rate['seconds']} s"
        f" = {rate['readings_per_s']} readings/s"
    )
    out = ROOT / "bench" / "results" / "ble_gateway.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "central":
        _central(int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
    else:
        parser = argparse.ArgumentParser(description=__doc__)
        parser.add_argument("--quick", action="store_true")
        main(quick=parser.parse_args().quick)
