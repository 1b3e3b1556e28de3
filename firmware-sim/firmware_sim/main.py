"""``postop sim``: simulate the devices of one or more kits, all on one simulated clock.

A kit ``KEY=LINK_PORT`` streams every value to its gateway's local link (JSON over TCP);
a kit ``KEY=LINK_PORT:HCI_PORT`` puts its devices on a virtual Bluetooth radio as real
BLE peripherals, with its gateway's virtual controller served on ``HCI_PORT`` (the
gateway opens ``tcp-client:127.0.0.1:HCI_PORT``); only what no SIG service carries
(a patch's respiratory rate and steps, the pain diary) still uses the local link."""

from __future__ import annotations

import logging
import math
import signal
import threading
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from firmware_sim.ble_kit import BleKit, BleSimulation
from firmware_sim.clock import SimClock, from_ms, to_ms
from firmware_sim.devices import KitSimulator
from firmware_sim.link_client import run_sim
from vitals.settings import Settings

log = logging.getLogger(__name__)


def parse_kit(spec: str) -> tuple[str, int, int | None]:
    """``PATIENT_KEY=LINK_PORT[:HCI_PORT]`` -> (patient key, link port, HCI port)."""
    key, sep, ports = spec.partition("=")
    link, _, hci = ports.partition(":")
    numbers = [link, hci] if hci else [link]
    if not sep or not key or not all(p.isdigit() and 0 < int(p) < 65536 for p in numbers):
        raise ValueError(f"expected PATIENT_KEY=LINK_PORT[:HCI_PORT], got {spec!r}")
    return key, int(link), int(hci) if hci else None


def _stream(
    kit: KitSimulator,
    host: str,
    port: int,
    backfill_from_ms: int | None,
    live: SimClock,
    stop: threading.Event,
) -> None:
    """First the backfilled past as fast as the gateway takes it, then live."""
    if backfill_from_ms is not None:
        past = SimClock(from_ms(backfill_from_ms), math.inf)
        run_sim([kit], past, host, port, stop, until_ms=live.now_ms())
    run_sim([kit], live, host, port, stop)


def run(
    settings: Settings,
    kits: list[str],
    speed: float,
    seed: int,
    stop: threading.Event,
    backfill_hours: float = 0.0,
) -> None:
    """Simulate ``kits``. Live time starts now; with ``speed`` above 1 it runs ahead of
    real time, which ingest refuses beyond its future tolerance: use ``backfill_hours``
    to have recent history at once instead."""
    tz = ZoneInfo(settings.gateway.device_timezone)
    now = datetime.now(UTC).replace(microsecond=0)
    clock = SimClock(now, speed)
    backfill_from_ms = to_ms(now) - int(backfill_hours * 3_600_000) if backfill_hours else None
    threads = []
    ble_kits = []
    for spec in kits:
        key, port, hci_port = parse_kit(spec)
        kit_start = from_ms(backfill_from_ms) if backfill_from_ms is not None else now
        kit = KitSimulator(key, seed, kit_start, tz=tz)
        if hci_port is not None:
            ble_kits.append(BleKit(kit, hci_port, port))
            log.info("simulating kit %s over BLE (gateway controller on %d)", key, hci_port)
            continue
        thread = threading.Thread(
            target=_stream,
            args=(kit, settings.gateway.link_host, port, backfill_from_ms, clock, stop),
            name=f"sim-{key}",
            daemon=True,
        )
        thread.start()
        threads.append(thread)
        log.info("simulating kit %s (%s) -> port %d", key, ", ".join(kit.device_ids()), port)
    radio = None
    if ble_kits:
        if speed != 1.0:  # device clocks follow the gateway's Current Time: real time
            raise ValueError("kits on the virtual radio run in real time: use --speed 1")
        radio = BleSimulation(
            ble_kits, clock, link_host=settings.gateway.link_host, start_ms=backfill_from_ms
        ).start()
    while any(t.is_alive() for t in threads) or radio is not None:
        if stop.wait(1.0):
            break
    if radio is not None:
        radio.stop()
    for t in threads:
        t.join(timeout=5)


def main(
    settings: Settings,
    kits: list[str],
    speed: float = 1.0,
    seed: int = 1,
    backfill_hours: float = 0.0,
) -> None:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run(settings, kits, speed, seed, stop, backfill_hours)
