"""``postop up``: the whole service on one machine, from nothing.

Private PostgreSQL and Mosquitto in the data folder, migrations, demo care team and
patients with their kits, then ingest, one gateway per home, the API and the simulator as
supervised child processes. Ports are remembered in the data folder so that a second
``postop up`` finds the same database and the gateways' outboxes where they were left.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from postop.local_mosquitto import LocalMosquitto
from postop.local_postgres import (
    TIMESCALEDB_CONF,
    LocalPostgres,
    find_binaries,
    timescaledb_installed,
)
from postop.ports import free_port, wait_port
from postop.supervisor import Child, Supervisor
from store.migrate import migrate
from store.mqtt_accounts import hash_password, new_secret, write_password_file
from store.provisioning import (
    enroll,
    ensure_patient,
    ensure_team,
    register_device,
    register_gateway,
)
from vitals.settings import Settings

log = logging.getLogger(__name__)

DEMO_TEAM = "Chirurgie - suivi à domicile (démo)"
DEFAULT_PORTS = {"postgres": 55432, "mqtt": 18830}


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports(state_file: Path, api_port: int) -> dict[str, int]:
    wanted = dict(DEFAULT_PORTS, api=api_port)
    if state_file.exists():
        wanted.update(json.loads(state_file.read_text(encoding="utf-8")))
    ports = {name: p if _port_free(p) else free_port() for name, p in wanted.items()}
    state_file.write_text(json.dumps(ports), encoding="utf-8")
    return ports


def _demo_kits(conn: psycopg.Connection, count: int) -> list[tuple[str, str, str]]:
    """(patient key, gateway id, gateway password) for each demo patient, provisioned."""
    from firmware_sim.devices import kit_devices

    team = ensure_team(conn, DEMO_TEAM)
    kits = []
    for n in range(1, count + 1):
        key = f"demo-{n:03d}"
        patient = ensure_patient(conn, f"DEMO-{n:03d}", team, language=("en", "es", "it")[n % 3])
        gateway_id = f"gw-{key}"
        password = register_gateway(conn, gateway_id)  # re-keyed at every start
        for device_id, kind in kit_devices(key):
            register_device(conn, device_id, kind, gateway_id)
            has = conn.execute(
                "SELECT 1 FROM enrollments WHERE device_id = %s AND upper_inf(valid)", (device_id,)
            ).fetchone()
            if has is None:
                enroll(conn, device_id, patient, datetime.now(UTC) - timedelta(days=1))
        kits.append((key, gateway_id, password))
    return kits


def _vapid_key(data_dir: Path) -> str:
    """The stack's Web Push key, made once and kept (browsers subscribe to its public half)."""
    from alerts.vapid import generate

    path = data_dir / "vapid-private.pem"
    if not path.exists():
        path.write_text(generate().private_pem, encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8")


def run_stack(settings: Settings, data_dir: Path, patients: int, backfill_hours: float) -> None:
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o755)
    ports = _ports(data_dir / "stack.json", settings.api.port)
    binaries = find_binaries()
    # TimescaleDB whenever this PostgreSQL has it (a cluster keeps what it started with)
    pg = LocalPostgres(
        data_dir / "postgres",
        ports["postgres"],
        binaries=binaries,
        extra_conf=TIMESCALEDB_CONF if timescaledb_installed(binaries) else (),
    )
    broker = LocalMosquitto(data_dir / "mosquitto", ports["mqtt"])
    supervisor = Supervisor()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    started_pg = False
    try:
        created = pg.ensure_initialised()
        pg.start()
        started_pg = True
        pg.wait_ready()
        conninfo = pg.create_database("postop")
        applied = migrate(conninfo)
        ingest_password, api_password = new_secret(), new_secret()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            kits = _demo_kits(conn, patients)
            broker.write_config()
            write_password_file(
                conn,
                broker.password_file,
                {
                    "ingest": hash_password(ingest_password),
                    "api": hash_password(api_password),
                },
            )
        broker.start()

        common = {
            "POSTOP_DATABASE_URL": conninfo,
            "POSTOP_MQTT__HOST": "127.0.0.1",
            "POSTOP_MQTT__PORT": str(ports["mqtt"]),
            "POSTOP_LOG_LEVEL": settings.log_level,
        }
        logs = data_dir / "logs"
        supervisor.add(
            Child(
                "ingest",
                ["ingest"],
                {
                    **common,
                    "POSTOP_MQTT__USERNAME": "ingest",
                    "POSTOP_MQTT__PASSWORD": ingest_password,
                },
                logs / "ingest.log",
            )
        )
        supervisor.add(
            Child(
                "alerts",
                ["alerts"],
                {
                    **common,
                    "POSTOP_ALERTS__VAPID_PRIVATE_KEY": _vapid_key(data_dir),
                },
                logs / "alerts.log",
            )
        )
        kit_args = []
        for key, gateway_id, password in kits:
            link_port = free_port()
            supervisor.add(
                Child(
                    f"gateway {gateway_id}",
                    ["gateway"],
                    {
                        **common,
                        "POSTOP_MQTT__USERNAME": gateway_id,
                        "POSTOP_MQTT__PASSWORD": password,
                        "POSTOP_GATEWAY__GATEWAY_ID": gateway_id,
                        "POSTOP_GATEWAY__OUTBOX_PATH": str(
                            data_dir / "gateways" / f"{gateway_id}.sqlite3"
                        ),
                        "POSTOP_GATEWAY__LINK_PORT": str(link_port),
                    },
                    logs / f"{gateway_id}.log",
                )
            )
            kit_args += ["--kit", f"{key}={link_port}"]
        supervisor.add(
            Child(
                "api",
                ["api"],
                {
                    **common,
                    "POSTOP_API__PORT": str(ports["api"]),
                },
                logs / "api.log",
            )
        )
        if kits:
            supervisor.add(
                Child(
                    "simulator",
                    ["sim", *kit_args, "--backfill-hours", str(backfill_hours)],
                    common,
                    logs / "sim.log",
                )
            )
        wait_port(ports["api"], 30)
        _announce(pg, created, applied, ports, kits, data_dir)
        while not stop.wait(1.0):
            supervisor.check()
    finally:
        print("\nstopping postop...", flush=True)
        supervisor.stop_all()
        broker.stop()
        if started_pg:
            pg.stop()
        print(f"stopped; data kept in {data_dir}", flush=True)


def _announce(
    pg: LocalPostgres,
    created: bool,
    applied: Sequence[object],
    ports: dict[str, int],
    kits: list[tuple[str, str, str]],
    data_dir: Path,
) -> None:
    lines = [
        "",
        "postop is running",
        f"  dashboard   http://127.0.0.1:{ports['api']}/   (health: /health, readiness: /ready)",
        "  login       clinician accounts arrive with the web app; the API is open on loopback",
        f"  PostgreSQL  127.0.0.1:{ports['postgres']} database postop "
        f"({pg.binaries.origin} binaries; {'new' if created else 'existing'} cluster, "
        f"{len(applied)} migrations applied now)",
        f"  MQTT        127.0.0.1:{ports['mqtt']} (Mosquitto, per-gateway passwords, ACL)",
        f"  patients    {', '.join(k[0] for k in kits) or 'none'}"
        " (simulated kits, one gateway each)",
        f"  logs        {data_dir / 'logs'}",
        "Ctrl-C stops everything; the data is kept for the next start.",
        "",
    ]
    print("\n".join(lines), flush=True)
