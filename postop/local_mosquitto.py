"""A private Mosquitto broker for the embedded default and for the tests.

It runs the same shared settings and ACL as production (``postop/mosquitto/``), on a
loopback listener, with a password file rendered from the database plus the service
accounts. Where the binary is missing, the error says how to install it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from postop.ports import port_free, wait_own_listener

INSTALL_HINT = (
    "Mosquitto is not installed. Install it with your system's package manager: "
    "`sudo apt-get install mosquitto` (Debian/Ubuntu), `sudo dnf install mosquitto` "
    "(Fedora/RHEL), `brew install mosquitto` (macOS); or point postop at an existing "
    "broker with POSTOP_MQTT__HOST / POSTOP_MQTT__PORT."
)


class MosquittoUnavailable(RuntimeError):
    pass


class PortTaken(MosquittoUnavailable):
    """Another program listens on the broker's port: choose another one."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Server certificate, key and the CA that signed it: the listener then speaks TLS
    only (a plain MQTT connection to it fails)."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def config_lines(self) -> list[str]:
        return [
            f"cafile {self.ca_file}",
            f"certfile {self.cert_file}",
            f"keyfile {self.key_file}",
            "tls_version tlsv1.2",
        ]


def find_mosquitto() -> str:
    for candidate in (
        shutil.which("mosquitto"),
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ):
        if candidate and Path(candidate).exists():
            return candidate
    raise MosquittoUnavailable(INSTALL_HINT)


def shipped_file(name: str) -> str:
    return resources.files("postop.mosquitto").joinpath(name).read_text(encoding="utf-8")


class LocalMosquitto:
    """A broker whose state (persistence, password file, ACL, log) lives in ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        extra_acl: str = "",
        tls: TlsFiles | None = None,
        extra_conf: tuple[str, ...] = (),
    ) -> None:
        self.root = data_dir.resolve()
        self.port = port
        self.extra_acl = extra_acl
        self.extra_conf = extra_conf
        self.tls = tls
        self.binary = find_mosquitto()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def password_file(self) -> Path:
        return self.root / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.root / "acl"

    def write_config(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        self.acl_file.write_text(shipped_file("acl") + self.extra_acl, encoding="utf-8")
        if not self.password_file.exists():
            self.password_file.write_text("", encoding="utf-8")
        conf = self.root / "mosquitto.conf"
        lines = [
            shipped_file("broker.conf"),
            f"listener {self.port} 127.0.0.1",
            *(self.tls.config_lines() if self.tls else []),
            f"password_file {self.password_file}",
            f"acl_file {self.acl_file}",
            f"persistence_location {self.root}/",
            f"log_dest file {self.root / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            *self.extra_conf,
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # our own files, our own process; no privilege to drop
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return conf

    def start(self, timeout_s: float = 20.0) -> None:
        conf = self.write_config()
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # our own broker must hold the port: another program listening there would
        # otherwise pass for it
        if not wait_own_listener(self.port, self._pid, timeout_s):
            self.stop()
            if not port_free(self.port):
                raise PortTaken(f"port {self.port} is taken by another program")
            raise MosquittoUnavailable(
                f"Mosquitto did not open port {self.port}: {self.log_tail()}"
            )

    def _pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def reload(self) -> None:
        """Re-read the password file and ACL (after provisioning a gateway)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 2000) -> str:
        log = self.root / "mosquitto.log"
        return log.read_text(encoding="utf-8", errors="replace")[-chars:] if log.exists() else ""

    def wait_stopped(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.05)


def write_accounts(mosquitto: LocalMosquitto, accounts: dict[str, str]) -> None:
    """Replace the password file with ``accounts`` (name -> Mosquitto hash) and reload."""
    lines = [f"{name}:{hashed}" for name, hashed in sorted(accounts.items())]
    tmp = mosquitto.password_file.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(mosquitto.password_file)
    mosquitto.reload()
