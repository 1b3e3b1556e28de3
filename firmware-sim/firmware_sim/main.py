"""``postop sim``: simulate the devices of one or more kits, each streaming to its own
gateway's local link, all on one simulated clock."""

from __future__ import annotations

import logging
import math
import signal
import threading
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from firmware_sim.clock import SimClock, from_ms, to_ms
from firmware_sim.devices import KitSimulator
from firmware_sim.link_client import run_sim
from vitals.settings import Settings

log = logging.getLogger(__name__)


def parse_kit(spec: str) -> tuple[str, int]:
    """``PATIENT_KEY=GATEWAY_LINK_PORT`` -> (patient key, port)."""
    key, sep, port = spec.partition("=")
    if not sep or not key or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected PATIENT_KEY=PORT, got {spec!r}")
    return key, int(port)


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
    for spec in kits:
        key, port = parse_kit(spec)
        kit_start = from_ms(backfill_from_ms) if backfill_from_ms is not None else now
        kit = KitSimulator(key, seed, kit_start, tz=tz)
        thread = threading.Thread(
            target=_stream,
            args=(kit, settings.gateway.link_host, port, backfill_from_ms, clock, stop),
            name=f"sim-{key}",
            daemon=True,
        )
        thread.start()
        threads.append(thread)
        log.info("simulating kit %s (%s) -> port %d", key, ", ".join(kit.device_ids()), port)
    while any(t.is_alive() for t in threads):
        stop.wait(1.0)
        if stop.is_set():
            break
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
