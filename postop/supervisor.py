"""Child processes for ``postop up``: each service is its own process with its settings in
its environment; one that dies unexpectedly is restarted with a growing delay, and all of
them are stopped in reverse order with SIGTERM (then SIGKILL after a grace period)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


def die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM if ``postop up`` itself dies
    (even by SIGKILL), so no service is left running on its own."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    """One ``postop <command>`` process."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_restart: float = 0.0

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSTOP_")}
        env.update(self.env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "postop.cli", *self.command],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []

    def add(self, child: Child) -> Child:
        child.start()
        self.children.append(child)
        return child

    def check(self) -> None:
        """Restart children that exited; call periodically."""
        now = time.monotonic()
        for child in self.children:
            if child.proc is None or child.proc.poll() is None:
                continue
            if child.next_restart == 0.0:
                delay = min(2**child.restarts, 60)
                child.next_restart = now + delay
                log.warning(
                    "%s exited with %s; restarting in %d s (log: %s)",
                    child.name,
                    child.proc.returncode,
                    delay,
                    child.log_path,
                )
            elif now >= child.next_restart:
                child.restarts += 1
                child.next_restart = 0.0
                child.start()

    def stop_all(self, grace_s: float = 10.0) -> None:
        for child in reversed(self.children):
            if child.proc is not None and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in reversed(self.children):
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
                child.proc.kill()
                child.proc.wait(timeout=5)
