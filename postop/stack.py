"""``postop up``: the whole service on one machine, from nothing.

Private PostgreSQL and Mosquitto in the data folder, migrations, demo care team and
patients with their kits, then ingest, one gateway per home, the API and the simulator as
supervised child processes. Ports are remembered in the data folder so that a second
``postop up`` finds the same database and the gateways' outboxes where they were left.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from postop.broker_accounts import follow_broker_accounts
from postop.local_mosquitto import LocalMosquitto, PortTaken
from postop.local_postgres import (
    TIMESCALEDB_CONF,
    LocalPostgres,
    PostgresPortTaken,
    find_binaries,
    timescaledb_installed,
)
from postop.ports import free_port, port_free, wait_own_listener
from postop.supervisor import Child, Server, Supervisor
from store.broker_acl import accounts_from_db
from store.migrate import migrate
from store.mqtt_accounts import new_secret, set_service_account
from store.provisioning import (
    OtherTeamsKitError,
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
    ("physician@postop.example", "Dr Démo", "physician", "fr"),
)
DEMO_HOMES = (  # language, time zone, country, procedure, home physician
    ("en", "America/New_York", "US", "Laparoscopic colectomy", "Dr Jane Miller"),
    ("es", "Europe/Madrid", "ES", "Total hip replacement", "Dra. Lucía García"),
    ("it", "Europe/Rome", "IT", "Coronary artery bypass", "Dott. Marco Rossi"),
)
DEMO_TOTP_FILE = "demo-totp-secret.txt"
DEFAULT_PORTS = {"postgres": 55432, "mqtt": 18830}
PORT_TRIES = 5


class NoFreePort(RuntimeError):
    """Every port tried was taken by another program."""


class StackPorts:
    """The stack's ports, kept in ``stack.json``: each service gets the port it had in the
    first run whenever that port is free again (links and bookmarks keep working); only
    while another program holds it does this run use another one, which the file records
    as the current port without forgetting the preferred one."""

    def __init__(self, path: Path, api_port: int | None) -> None:
        self.path = path
        stored = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        preferred = stored.get("preferred") or {
            k: v for k, v in stored.items() if isinstance(v, int)
        }
        self.first_run = not preferred
        self.preferred: dict[str, int] = {**DEFAULT_PORTS, "api": 8000, **preferred}
        if api_port is not None:  # set explicitly (POSTOP_API__PORT): it wins
            self.preferred["api"] = api_port
        self.current: dict[str, int] = {}

    def candidates(self, name: str) -> list[int]:
        """The preferred port when a server could bind it now, then free ones."""
        wanted = self.preferred[name]
        return ([wanted] if port_free(wanted) else []) + [free_port() for _ in range(PORT_TRIES)]

    def settle(self, name: str, port: int) -> None:
        """``port`` is held by our own child now: record it."""
        if port != self.preferred[name]:
            log.warning(
                "%s: port %d is taken; using %d for this run", name, self.preferred[name], port
            )
            if self.first_run:
                self.preferred[name] = port
        self.current[name] = port
        body = {**self.current, "preferred": self.preferred}
        self.path.write_text(json.dumps(body), encoding="utf-8")


def _private_data_dir(data_dir: Path, pg: LocalPostgres) -> None:
    """The data folder and everything in it for this user alone (0700 folders, 0600
    files): logs, outboxes, keys and the demo password are health data or secrets. The
    PostgreSQL account (under root) may only traverse it, through its group (0710)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in [data_dir, *data_dir.rglob("*")]:
        if pg.pgdata in path.parents or path == pg.pgdata or path.is_symlink():
            continue  # the cluster's files are the server's, initdb made them private
        if path.is_dir():
            path.chmod(0o700)
        elif path.owner() == data_dir.owner():
            path.chmod(0o600)
    pg.share_with_server(data_dir)


def _demo_kits(
    conn: psycopg.Connection, count: int, backfill_hours: float
) -> list[tuple[str, str, str]]:
    """(patient key, gateway id, gateway password) for each demo patient, provisioned.
    A new kit is enrolled from the start of the simulated history it is about to send
    (missing-data rules count from the enrolment: nothing is missing before it)."""
    from firmware_sim.ble_peripheral import SERVICES, ble_address
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
        try:
            password = register_gateway(conn, gateway_id, team)  # re-keyed at every start
        except OtherTeamsKitError:
            log.warning("demo gateway %s belongs to another care team; kit skipped", gateway_id)
            continue
        if not _demo_consents(conn, patient, language, (physician, country)):
            log.warning("demo patient %s has not consented to monitoring; kit skipped", key)
            continue
        for device_id, kind in kit_devices(key):
            # the simulator's Bluetooth address, as an admin enters a real device's: the
            # API publishes the same list as publish_kit_configs when the kit changes
            address = ble_address(device_id) if kind in SERVICES else None
            register_device(conn, device_id, kind, gateway_id, address)
            has = conn.execute(
                "SELECT 1 FROM enrollments WHERE device_id = %s AND upper_inf(valid)", (device_id,)
            ).fetchone()
            if has is None:
                since = datetime.now(UTC) - timedelta(hours=backfill_hours, minutes=5)
                enroll(conn, device_id, patient, since)
        kits.append((key, gateway_id, password))
    return kits


def _demo_consents(
    conn: psycopg.Connection, patient: int, language: str, physician: tuple[str, str]
) -> bool:
    """The demo patient's consents, recorded by the demo coordinator at the first start
    (the devices are enrolled only under a monitoring consent, the links only under a
    sharing one). A decision recorded since in the app is kept: a withdrawal stays one.
    True when monitoring is consented."""
    from store.consents import Monitoring, monitoring_state, record_usual_consents

    state = monitoring_state(conn, patient)
    if state is Monitoring.NONE:
        by = conn.execute(
            "SELECT clinician_id FROM clinicians WHERE lower(email) = %s",
            (DEMO_ACCOUNTS[1][0],),
        ).fetchone()
        assert by is not None, "demo accounts are made before the demo patients"
        record_usual_consents(conn, patient, int(by[0]), language, physician)
        return True
    return state is Monitoring.GIVEN


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

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="api", protocol=mqtt.MQTTv5)
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


def _private_file(path: Path, make: Callable[[], str]) -> str:
    """A secret made at the first start and kept in the data folder (0600)."""
    if not path.exists():
        path.write_text(make(), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def second_factor_key(data_dir: Path) -> str:
    """The key the stack's API seals TOTP secrets with (kept in the data folder)."""
    from api.common.second_factor import new_key

    return _private_file(data_dir / "second-factor.key", new_key)


def demo_totp_secret(data_dir: Path) -> str | None:
    """The demo accounts' TOTP secret, if this data folder's `postop up` made one."""
    path = data_dir / DEMO_TOTP_FILE
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


@dataclass(frozen=True)
class DemoLogin:
    password: str
    totp_secret: str


def _demo_login(conn: psycopg.Connection, data_dir: Path, key: str) -> DemoLogin:
    """The demo accounts' password and second factor: made at the first start, kept in the
    data folder, so that a newcomer signs in with `postop demo-code` (or the otpauth URI
    in any authenticator app). Only these demo accounts, made here, are enrolled so:
    `postop api` (production) makes no account and enrols none."""
    from pydantic import SecretStr

    from api.common import second_factor
    from api.common.passwords import hash_password as hash_clinician_password
    from store.clinicians import create_clinician

    password = _private_file(data_dir / "demo-password.txt", lambda: new_secret()[:20])
    totp = _private_file(data_dir / DEMO_TOTP_FILE, second_factor.new_secret)
    box = second_factor.SecretBox(SecretStr(key))
    team = ensure_team(conn, DEMO_TEAM)
    for email, name, role, language in DEMO_ACCOUNTS:
        row = conn.execute(
            "SELECT clinician_id, totp_enrolled_at IS NOT NULL FROM clinicians"
            " WHERE lower(email) = %s",
            (email,),
        ).fetchone()
        if row is None:
            cid = create_clinician(
                conn, email, name, role, hash_clinician_password(password), [team], language
            )
            second_factor.enrol(conn, box, cid, totp, None)
        elif not row[1]:  # a data folder from before the second factor
            second_factor.enrol(conn, box, int(row[0]), totp, None)
    return DemoLogin(password, totp)


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


def _start_on_free_port(name: str, ports: StackPorts, start: Callable[[int], None]) -> int:
    """Start a server on its preferred port, or on another one while that one is taken
    (``start`` raises a PortTaken error when the port is not its own); returns the port."""
    for port in ports.candidates(name):
        try:
            start(port)
        except (PostgresPortTaken, PortTaken) as exc:
            log.warning("%s: %s", name, exc)
            continue
        ports.settle(name, port)
        return port
    raise NoFreePort(f"{name}: no free port after {PORT_TRIES} tries")


def _start_api(supervisor: Supervisor, ports: StackPorts, child_of: Callable[[int], Child]) -> int:
    """The API on its port, proven to be our own child's listener (a port free when
    checked may be taken before uvicorn binds it: then uvicorn exits, and we try another
    port instead of announcing someone else's server)."""
    for port in ports.candidates("api"):
        child = child_of(port)
        child.start()
        if wait_own_listener(port, lambda c=child: c.pid(), 60):  # type: ignore[misc]
            supervisor.children.append(child)
            ports.settle("api", port)
            return port
        child.stop()
        log.warning("api: port %d is not ours (another program holds it?)", port)
    raise NoFreePort(f"api: no port of our own after {PORT_TRIES} tries (see {child.log_path})")


def _prove_own(child: Child, port: int, timeout_s: float = 120.0) -> None:
    """A gateway's link port and the simulator's controller ports are chosen free and bound
    by the child a moment later: should another program (another stack) take one in
    between, the kit would talk to a stranger's gateway. Stop rather than mix homes."""
    if wait_own_listener(port, child.pid, timeout_s):
        return
    if not port_free(port):
        raise NoFreePort(
            f"{child.name}: port {port} was taken by another program while starting;"
            " start postop up again"
        )
    log.warning("%s did not open port %d yet (see %s)", child.name, port, child.log_path)


def run_stack(settings: Settings, data_dir: Path, patients: int, backfill_hours: float) -> None:
    os.umask(0o077)  # what the stack and its children create is private by default
    data_dir = data_dir.resolve()
    binaries = find_binaries()
    # TimescaleDB whenever this PostgreSQL has it (a cluster keeps what it started with)
    pg = LocalPostgres(
        data_dir / "postgres",
        DEFAULT_PORTS["postgres"],
        binaries=binaries,
        extra_conf=TIMESCALEDB_CONF if timescaledb_installed(binaries) else (),
    )
    _private_data_dir(data_dir, pg)
    explicit_api = settings.api.port if "port" in settings.api.model_fields_set else None
    ports = StackPorts(data_dir / "stack.json", explicit_api)
    broker = LocalMosquitto(data_dir / "mosquitto", DEFAULT_PORTS["mqtt"])
    supervisor = Supervisor()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    started_pg = False
    try:
        created = pg.ensure_initialised()

        def start_pg(port: int) -> None:
            pg.port = port
            pg.start()

        _start_on_free_port("postgres", ports, start_pg)
        started_pg = True
        pg.wait_ready()
        conninfo = pg.create_database("postop")
        applied = migrate(conninfo)
        ingest_password, api_password = new_secret(), new_secret()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            factor_key = settings.api.second_factor_key
            api_key = factor_key.get_secret_value() if factor_key else second_factor_key(data_dir)
            demo = _demo_login(conn, data_dir, api_key)  # the consents' recorder first
            kits = _demo_kits(conn, patients, backfill_hours)
            # each ingest worker has its own account, bound to its client id
            conn.execute("DELETE FROM mqtt_service_accounts WHERE name = 'ingest'")  # shared once
            set_service_account(conn, "ingest-1", ingest_password, "ingest")
            set_service_account(conn, "api", api_password, "api")
            broker.write_config(accounts_from_db(conn))

        def start_broker(port: int) -> None:
            broker.port = port
            broker.start()

        _start_on_free_port("mqtt", ports, start_broker)
        # a server that dies is started again on its port (services reconnect by themselves)
        supervisor.watch(Server("PostgreSQL", pg.start, lambda: pg.postmaster_pid() is not None))
        supervisor.watch(Server("Mosquitto", broker.start, broker.is_running))
        follow_broker_accounts(conninfo, broker, stop)
        vapid_pem = _vapid_key(data_dir)

        common = {
            "POSTOP_DATABASE_URL": conninfo,
            "POSTOP_MQTT__HOST": "127.0.0.1",
            "POSTOP_MQTT__PORT": str(ports.current["mqtt"]),
            "POSTOP_LOG_LEVEL": settings.log_level,
            # operations settings given to `postop up` reach every service
            "POSTOP_MQTT__DOWN_LOG_S": str(settings.mqtt.down_log_s),
            "POSTOP_ALERTS__TICK_S": str(settings.alerts.tick_s),
            "POSTOP_ALERTS__STALE_DATA_S": str(settings.alerts.stale_data_s),
        }
        logs = data_dir / "logs"
        supervisor.add(
            Child(
                "ingest",
                ["ingest"],
                {
                    **common,
                    "POSTOP_MQTT__USERNAME": "ingest-1",
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
        supervisor.add(
            Child(
                "retention",
                ["retention"],
                {
                    **common,
                    "POSTOP_RETENTION__RECORD_YEARS": str(settings.retention.record_years),
                    "POSTOP_RETENTION__ADDRESS_DAYS": str(settings.retention.address_days),
                },
                logs / "retention.log",
            )
        )
        kit_args = []
        publish_kit_configs(ports.current["mqtt"], api_password, kits)
        kit_ports: list[tuple[Child, int, int]] = []
        for key, gateway_id, password in kits:
            link_port, hci_port = free_port(), free_port()
            gateway = supervisor.add(
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
            kit_ports.append((gateway, link_port, hci_port))
            kit_args += ["--kit", f"{key}={link_port}:{hci_port}"]
        public_base_url = settings.api.public_base_url

        def api_child(port: int) -> Child:
            return Child(
                "api",
                ["api"],
                {
                    **common,
                    "POSTOP_API__PORT": str(port),
                    "POSTOP_API__PUBLIC_BASE_URL": public_base_url or f"http://127.0.0.1:{port}",
                    "POSTOP_API__VAPID_PUBLIC_KEY": _vapid_public(vapid_pem),
                    "POSTOP_API__SECOND_FACTOR_KEY": api_key,
                    "POSTOP_MQTT__USERNAME": "api",
                    "POSTOP_MQTT__PASSWORD": api_password,
                },
                logs / "api.log",
            )

        _start_api(supervisor, ports, api_child)
        if kits:
            simulator = supervisor.add(
                Child(
                    "simulator",
                    ["sim", *kit_args, "--backfill-hours", str(backfill_hours)],
                    common,
                    logs / "sim.log",
                )
            )
            for gateway, link_port, hci_port in kit_ports:
                _prove_own(gateway, link_port)
                _prove_own(simulator, hci_port)
        dashboard = public_base_url or f"http://127.0.0.1:{ports.current['api']}"
        _announce(pg, created, applied, ports.current, kits, data_dir, demo, dashboard)
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
    demo: DemoLogin,
    dashboard: str,
) -> None:
    from api.common.second_factor import provisioning_uri

    lines = [
        "",
        "postop is running",
        f"  dashboard   {dashboard.rstrip('/')}/   (health: /health, readiness: /ready)",
        f"  login       {DEMO_ACCOUNTS[0][0]} (admin), {DEMO_ACCOUNTS[1][0]} (coordinator),"
        f" {DEMO_ACCOUNTS[2][0]} (physician); password {demo.password}",
        "  2nd factor  `postop demo-code` prints the current code; or add this to an"
        " authenticator app (demo accounts only):",
        f"              {provisioning_uri(demo.totp_secret, 'demo accounts')}",
        f"  PostgreSQL  127.0.0.1:{ports['postgres']} database postop "
        f"({pg.binaries.origin} binaries; {'new' if created else 'existing'} cluster, "
        f"{len(applied)} migrations applied now)",
        f"  MQTT        127.0.0.1:{ports['mqtt']} (Mosquitto, per-gateway passwords,"
        " client ids and ACLs)",
        f"  patients    {', '.join(k[0] for k in kits) or 'none'}"
        " (simulated kits, one gateway each)",
        f"  logs        {data_dir / 'logs'}",
        "Ctrl-C stops everything; the data is kept for the next start.",
        "",
    ]
    print("\n".join(lines), flush=True)
