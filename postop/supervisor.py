"""Child processes for ``postop up``: each service is its own process with its settings in
its environment; one that dies unexpectedly is restarted with a growing delay, and all of
them are stopped in reverse order with SIGTERM (then SIGKILL after a grace period).

The servers (PostgreSQL, Mosquitto) are watched the same way through ``Server``: a broker
killed by -9 sends no last will and nothing else would notice it is gone."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
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

    def pid(self) -> int | None:
        """The process id while it runs, else None."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def stop(self, grace_s: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@dataclass
class Server:
    """A server started and stopped by its own object (``LocalPostgres``,
    ``LocalMosquitto``): restarted with ``start`` when ``alive`` says it is gone."""

    name: str
    start: Callable[[], None]
    alive: Callable[[], bool]
    restarts: int = 0
    next_restart: float = 0.0
    down_since: float = 0.0


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []
        self.servers: list[Server] = []

    def add(self, child: Child) -> Child:
        child.start()
        self.children.append(child)
        return child

    def watch(self, server: Server) -> Server:
        """Watch a server that is already running."""
        self.servers.append(server)
        return server

    def _check_servers(self, now: float) -> None:
        for server in self.servers:
            if server.alive():
                if server.down_since and server.restarts:
                    log.warning("%s is back after %.0f s", server.name, now - server.down_since)
                    server.down_since = 0.0
                continue
            if server.next_restart == 0.0:
                delay = min(2**server.restarts, 30) if server.restarts else 0.5
                server.next_restart = now + delay
                server.down_since = server.down_since or now
                log.error("%s is not running; restarting it in %.1f s", server.name, delay)
            elif now >= server.next_restart:
                server.restarts += 1
                server.next_restart = 0.0
                try:
                    server.start()
                except Exception as exc:  # a failed start is retried with a longer delay
                    log.error("%s did not start again: %s", server.name, exc)

    def check(self) -> None:
        """Restart servers and children that exited; call periodically."""
        now = time.monotonic()
        self._check_servers(now)
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
