"""The virtual radio in its own OS process, for the test that kills it as a dongle is
unplugged: ``python -m tests.e2e.ble_radio_process HCI_PORT KEY`` serves a gateway's
virtual controller on HCI_PORT and one heart-rate patch (a notification a second) until
it is killed. Run again with the same key, it is the same device (same address)."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime

from firmware_sim.ble_kit import BleKit, BleSimulation
from firmware_sim.clock import SimClock
from firmware_sim.devices import DeviceKind, KitSimulator, Schedule


def patch_kit(key: str, now: datetime) -> KitSimulator:
    return KitSimulator(
        key, 1, now, (DeviceKind.HR_PATCH,), schedule=Schedule(patch_hr_interval_s=1)
    )


def main() -> None:
    port, key = int(sys.argv[1]), sys.argv[2]
    now = datetime.now(UTC).replace(microsecond=0)
    BleSimulation([BleKit(patch_kit(key, now), port)], SimClock(now, 1.0)).start()
    print("ready", flush=True)
    threading.Event().wait()  # until killed


if __name__ == "__main__":
    main()
