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

from postop.broker_accounts import follow_broker_accounts
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
from store.mqtt_accounts import (
    new_secret,
    set_service_account,
    write_password_file,
)
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
DEMO_ACCOUNTS = (  # e-mail, name, role, UI language
    ("admin@postop.example", "Admin (démo)", "admin", "fr"),
    ("coordination@postop.example", "Coordination IDE (démo)", "coordinator", "fr"),
    ("physician@postop.example", "Dr Demo", "physician", "en"),
)
DEMO_HOMES = (  # language, time zone, country, procedure, home physician
    ("en", "America/New_York", "US", "Laparoscopic colectomy", "Dr Jane Miller"),
    ("es", "Europe/Madrid", "ES", "Total hip replacement", "Dra. Lucía García"),
    ("it", "Europe/Rome", "IT", "Coronary artery bypass", "Dott. Marco Rossi"),
)
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
        language, zone, country, procedure, physician = DEMO_HOMES[(n - 1) % len(DEMO_HOMES)]
        patient = ensure_patient(conn, f"DEMO-{n:03d}", team, language, zone)
        conn.execute(
            "UPDATE patients SET home_country = %s, procedure = %s, home_physician_name = %s,"
            " surgery_date = coalesce(surgery_date, current_date - 4),"
            " discharged_at = coalesce(discharged_at, now() - interval '1 day'),"
            " protocol = %s WHERE patient_id = %s",
            (
                country,
                procedure,
                physician,
                ("digestive_surgery", "orthopaedic_surgery", "cardiac_surgery")[(n - 1) % 3],
                patient,
            ),
        )
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


def publish_kit_configs(
    mqtt_port: int, api_password: str, kits: list[tuple[str, str, str]]
) -> None:
    """Each demo gateway's retained configuration (as the backend's ``api`` account does):
    the addresses of its kit's devices on the simulator's radio, the only ones it pairs."""
    import paho.mqtt.client as mqtt
    from firmware_sim.ble_peripheral import SERVICES, ble_address
    from firmware_sim.devices import kit_devices
    from paho.mqtt.enums import CallbackAPIVersion

    from vitals.topics import config_topic

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="postop-up-config", protocol=mqtt.MQTTv5
    )
    client.username_pw_set("api", api_password)
    client.connect("127.0.0.1", mqtt_port)
    client.loop_start()
    try:
        for key, gateway_id, _ in kits:
            devices = [
                {"id": device_id, "address": ble_address(device_id), "kind": kind}
                for device_id, kind in kit_devices(key)
                if kind in SERVICES  # the pain diary is typed into the hub, not paired
            ]
            info = client.publish(
                config_topic(gateway_id), json.dumps({"devices": devices}), qos=1, retain=True
            )
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def _demo_login(conn: psycopg.Connection, data_dir: Path) -> str:
    """The demo accounts' password: made at the first start, kept in the data folder."""
    from api.passwords import hash_password as hash_clinician_password
    from store.clinicians import create_clinician

    path = data_dir / "demo-password.txt"
    if not path.exists():
        path.write_text(new_secret()[:20], encoding="utf-8")
        path.chmod(0o600)
    password = path.read_text(encoding="utf-8").strip()
    team = ensure_team(conn, DEMO_TEAM)
    for email, name, role, language in DEMO_ACCOUNTS:
        exists = conn.execute(
            "SELECT 1 FROM clinicians WHERE lower(email) = %s", (email,)
        ).fetchone()
        if exists is None:
            create_clinician(
                conn, email, name, role, hash_clinician_password(password), [team], language
            )
    return password


def _vapid_key(data_dir: Path) -> str:
    """The stack's Web Push key, made once and kept (browsers subscribe to its public half)."""
    from alerts.vapid import generate

    path = data_dir / "vapid-private.pem"
    if not path.exists():
        path.write_text(generate().private_pem, encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8")


def _vapid_public(private_pem: str) -> str:
    from alerts.vapid import load, public_key_of

    return public_key_of(load(private_pem))


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
            demo_password = _demo_login(conn, data_dir)
            set_service_account(conn, "ingest", ingest_password)
            set_service_account(conn, "api", api_password)
            broker.write_config()
            write_password_file(conn, broker.password_file)
        broker.start()
        follow_broker_accounts(conninfo, broker, stop)
        vapid_pem = _vapid_key(data_dir)

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
                    "POSTOP_ALERTS__VAPID_PRIVATE_KEY": vapid_pem,
                },
                logs / "alerts.log",
            )
        )
        kit_args = []
        publish_kit_configs(ports["mqtt"], api_password, kits)
        for key, gateway_id, password in kits:
            link_port, hci_port = free_port(), free_port()
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
                        # the kit's devices are BLE peripherals on the simulator's radio
                        "POSTOP_GATEWAY__HCI_TRANSPORT": f"tcp-client:127.0.0.1:{hci_port}",
                        "POSTOP_GATEWAY__BLE_BONDS_PATH": str(
                            data_dir / "gateways" / f"{gateway_id}-bonds.json"
                        ),
                    },
                    logs / f"{gateway_id}.log",
                )
            )
            kit_args += ["--kit", f"{key}={link_port}:{hci_port}"]
        supervisor.add(
            Child(
                "api",
                ["api"],
                {
                    **common,
                    "POSTOP_API__PORT": str(ports["api"]),
                    "POSTOP_API__VAPID_PUBLIC_KEY": _vapid_public(vapid_pem),
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
        _announce(pg, created, applied, ports, kits, data_dir, demo_password)
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
    demo_password: str,
) -> None:
    lines = [
        "",
        "postop is running",
        f"  dashboard   http://127.0.0.1:{ports['api']}/   (health: /health, readiness: /ready)",
        f"  login       {DEMO_ACCOUNTS[0][0]} (admin), {DEMO_ACCOUNTS[1][0]} (coordinator),"
        f" {DEMO_ACCOUNTS[2][0]} (physician); password {demo_password}",
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
