"""Private service instances and real processes for the tests (no mocks of our own
database or broker): a PostgreSQL cluster and a Mosquitto broker on free loopback ports,
and postop services started as separate processes that a test can SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from postop.ports import free_port
from postop.supervisor import die_with_parent

ROOT = Path(__file__).resolve().parent.parent


def wait_for(
    predicate: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


@dataclass
class ServiceProcess:
    """One postop service (``python -m <module>``) with settings from its environment."""

    module: str
    env: dict[str, str]
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.module.replace('.', '_')}.log"

    def start(self) -> ServiceProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSTOP_")}
        env.update(self.env)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "firmware-sim")])
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env=env,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # never outlive the test run
        )
        log.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no goodbye, as a crash or power cut would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_up(
    data_dir: Path, log: Path, patients: int, backfill_hours: float, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """``postop up`` in its own process, as a person runs it: no POSTOP_ setting of ours
    leaks in but ``env``; its output goes to ``log``. A new stack prefers free ports of
    its own (``stack.json``), not the defaults: another test's stack, in a parallel run,
    would hold those, and a restart would then have to move (as it does for a person
    whose port another program took)."""
    ports = data_dir / "stack.json"
    if not ports.exists():
        preferred = {"postgres": free_port(), "mqtt": free_port()}
        ports.write_text(json.dumps({"preferred": preferred}), encoding="utf-8")
    full = {k: v for k, v in os.environ.items() if not k.startswith("POSTOP_")}
    full.update({**env, "PYTHONPATH": str(ROOT)})
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "postop.cli", "up", "--data-dir", str(data_dir)),
                *("--patients", str(patients), "--backfill-hours", str(backfill_hours)),
            ],
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
        )
