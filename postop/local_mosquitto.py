"""A private Mosquitto broker for the embedded default and for the tests.

It runs the same shared settings as production (``postop/mosquitto/broker.conf``), on a
loopback listener, with the accounts given to it (rendered from the database by
``postop up``): passwords in Mosquitto's password file, client-id bindings and ACLs in
the dynamic-security plugin (store/broker_acl.py says why both). Where the binary or the
plugin is missing, the error says how to install it.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from postop import dynsec_control
from postop.ports import port_free, wait_own_listener
from postop.supervisor import die_with_parent
from store.broker_acl import DYNSEC_FILE, BrokerAccount, admin_account, dynsec_config
from store.mqtt_accounts import hash_password, new_secret, password_file_lines

INSTALL_HINT = (
    "Mosquitto is not installed. Install it with your system's package manager: "
    "`sudo apt-get install mosquitto` (Debian/Ubuntu), `sudo dnf install mosquitto` "
    "(Fedora/RHEL), `brew install mosquitto` (macOS); or point postop at an existing "
    "broker with POSTOP_MQTT__HOST / POSTOP_MQTT__PORT."
)


PLUGIN_HINT = (
    "Mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) was not found; "
    "it ships with Mosquitto 2.0 (Debian/Ubuntu package `mosquitto`, the eclipse-mosquitto:2 "
    "image). postop needs it: the broker checks subscriptions and client ids with it."
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


def find_dynsec_plugin() -> str:
    for pattern in (
        "/usr/lib/*/mosquitto_dynamic_security.so",
        "/usr/lib/mosquitto_dynamic_security.so",
        "/usr/local/lib/mosquitto_dynamic_security.so",
        "/usr/local/lib/*/mosquitto_dynamic_security.so",
    ):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    raise MosquittoUnavailable(PLUGIN_HINT)


def shipped_file(name: str) -> str:
    return resources.files("postop.mosquitto").joinpath(name).read_text(encoding="utf-8")


class LocalMosquitto:
    """A broker whose state (persistence, accounts, log) lives in ``data_dir``.

    ``accounts`` is the whole set the broker must know; ``apply_accounts`` makes a running
    broker match a new set (bindings first, then passwords; removals last)."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        tls: TlsFiles | None = None,
        extra_conf: tuple[str, ...] = (),
        admin_password: str | None = None,
    ) -> None:
        self.root = data_dir.resolve()
        self.port = port
        self.extra_conf = extra_conf
        self.tls = tls
        self.binary = find_mosquitto()
        self.plugin = find_dynsec_plugin()
        self.admin_password = admin_password or new_secret()
        self.accounts: dict[str, BrokerAccount] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def password_file(self) -> Path:
        return self.root / "passwd"

    @property
    def dynsec_file(self) -> Path:
        return self.root / DYNSEC_FILE

    def _write_private(self, path: Path, text: str) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(path)  # the broker never reads half a file

    def _write_password_file(self) -> None:
        lines = password_file_lines(self.accounts.values())
        self._write_private(self.password_file, "\n".join(lines) + "\n")

    def write_config(self, accounts: Sequence[BrokerAccount] | None = None) -> Path:
        """Everything the broker reads at start; ``accounts`` replaces the known set."""
        self.root.mkdir(parents=True, exist_ok=True)
        if accounts is not None:
            self.accounts = {a.name: a for a in accounts}
        self._write_password_file()
        admin = admin_account(hash_password(self.admin_password))
        config = dynsec_config(list(self.accounts.values()), admin)
        self._write_private(self.dynsec_file, json.dumps(config, indent=1))
        conf = self.root / "mosquitto.conf"
        lines = [
            shipped_file("broker.conf"),
            f"listener {self.port} 127.0.0.1",
            *(self.tls.config_lines() if self.tls else []),
            f"password_file {self.password_file}",
            f"plugin {self.plugin}",
            f"plugin_opt_config_file {self.dynsec_file}",
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
            preexec_fn=die_with_parent,  # never outlives whoever started it
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
        """Re-read the password file (the plugin's state changes over its control topic)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)

    def apply_accounts(self, accounts: Sequence[BrokerAccount]) -> None:
        """Make the broker know exactly ``accounts``. A new account gets its client-id
        binding and ACLs before its password; a removed one loses its password first."""
        wanted = {a.name: a for a in accounts}
        if not self.is_running():
            self.accounts = wanted
            if self.root.exists():
                self._write_password_file()
            return
        added = [a for name, a in wanted.items() if self.accounts.get(name) != a]
        removed = [name for name in self.accounts if name not in wanted]
        ca = str(self.tls.ca_file) if self.tls else None
        dynsec_control.add_accounts("127.0.0.1", self.port, self.admin_password, added, ca_file=ca)
        self.accounts = wanted
        self._write_password_file()
        self.reload()
        dynsec_control.remove_accounts(
            "127.0.0.1", self.port, self.admin_password, removed, ca_file=ca
        )

    def add_account(self, account: BrokerAccount) -> None:
        self.apply_accounts(
            [*(a for a in self.accounts.values() if a.name != account.name), account]
        )

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
