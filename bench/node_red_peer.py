"""The peer a user would otherwise pick: a Node-RED 4.1 flow, MQTT in -> PostgreSQL,
installed by the bench from npm into ``bench/.peers/`` (ignored by git) and run against the
same broker and database server with the same messages as ingest.

The PostgreSQL node: node-red-contrib-postgresql is not on the npm registry this machine
reaches, and node-red-contrib-re-postgres (which is) depends on node-postgres 6, which
cannot log in to PostgreSQL 15 (SCRAM authentication came with node-postgres 7.9). So the
flows call node-postgres 8, the library node-red-contrib-postgresql wraps, from a
function node (``functionGlobalContext``, Node-RED's documented way to use an npm module):
the same driver, the same pool, the same SQL a contrib node would send.

Three flows, each doing in SQL what ingest does (the device must be paired with the
sending gateway, the enrollment valid at the reading's time gives the patient, a reading
already stored is skipped):

- ``node-red``: the flow this bench compares against. ``JSON.parse`` of the message and
  one multi-row ``INSERT ... VALUES`` per message (five parameters a reading), what a
  competent user builds for batch payloads.
- ``node-red-sql``: the payload handed to PostgreSQL as it came, unpacked there with
  ``jsonb_array_elements``: one statement per message, the parsing moved to the server.
- ``node-red-per-reading``: what most users build from the palette (split the batch, one
  ``INSERT`` per reading), node-postgres' pool keeping 10 in flight.

All three do less than ingest: no per-reading validation against the catalogue, no dead
letters, no progress per gateway, no confirmation to the gateway; and Node-RED's MQTT node
acknowledges a message when it arrives, not after its rows are committed.

Why the bench once hung for ten minutes: the editor's default for the broker node,
``autoUnsubscribe``, unsubscribes on a clean stop. The bench stops the peer once its
session exists, then loads the broker: with no subscription left the broker queued
nothing, and the bench waited for rows that could never come. The flow now keeps its
subscription, and the bench checks the broker's log for it and stops waiting when rows
stop coming.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from store.broker_acl import BrokerAccount, observer_account
from store.mqtt_accounts import hash_password

ROOT = Path(__file__).resolve().parent.parent
INSTALL_DIR = ROOT / "bench" / ".peers" / "node-red"
NODE_RED = "4.1.15"  # the newest 4.1.x on the registry when the bench was written
PG = "8.23.1"
NODE_MAJOR_MIN = 18  # Node-RED 4 needs Node.js 18 or later
INSTALL_TIMEOUT_S = 300.0
START_TIMEOUT_S = 60.0
PEER_USER = "node-red"
PEER_CLIENT_ID = "node-red-peer"
PEER_TOPIC = "devices/+/readings"
# reads every home's readings, as ingest's account does


def peer_account() -> BrokerAccount:
    """Reads every home's readings, as the ingest workers do (its password: its name)."""
    return observer_account(PEER_USER, hash_password(PEER_USER), (PEER_TOPIC,))


# node-postgres' default pool size: as many statements in flight as a user gets untuned
POOL_SIZE = 10
LOG = "node-red.log"


class PeerUnavailable(RuntimeError):
    """Node.js, npm or the registry is missing: the peer cannot run on this machine."""


_MAPPED = """
JOIN metrics m ON m.name = r.metric
JOIN devices d ON d.device_id = r.device AND d.gateway_id = $1
JOIN enrollments e ON e.device_id = d.device_id
 AND e.valid @> to_timestamp(r.time_ms / 1000.0)
ON CONFLICT (device_id, metric_id, time) DO NOTHING
"""
_INSERT = """
INSERT INTO vitals (time, patient_id, device_id, metric_id, value, flags)
SELECT to_timestamp(r.time_ms / 1000.0), e.patient_id, d.device_id, m.metric_id,
       r.value, r.flags
"""

# node-red: the message parsed in Node.js, one multi-row INSERT with its readings as
# parameters ($1 is the gateway, then five a reading)
VALUES_HEAD = _INSERT + "FROM (VALUES "
VALUES_TAIL = ") AS r (time_ms, device, metric, value, flags)" + _MAPPED
VALUES_FUNCTION = """
const pool = global.get('pgPool');
const gateway = msg.topic.split('/')[1];
const readings = JSON.parse(msg.payload).readings;
const params = [gateway];
const rows = readings.map((r) => {
  params.push(r.time_ms, r.device, r.metric, r.value, r.flags);
  const i = params.length;
  return `($${i - 4}::int8, $${i - 3}::text, $${i - 2}::text, $${i - 1}::float8, $${i}::int2)`;
});
pool.query(HEAD + rows.join(',') + TAIL, params)
  .then(() => node.done())
  .catch((err) => node.error('insert failed: ' + err.message, msg));
return null;
"""

# node-red-sql: the payload as it came, unpacked by PostgreSQL
JSONB_SQL = (
    _INSERT
    + """FROM (SELECT (x->>'time_ms')::int8 AS time_ms, x->>'device' AS device,
             x->>'metric' AS metric, (x->>'value')::float8 AS value,
             (x->>'flags')::int2 AS flags
      FROM jsonb_array_elements($2::jsonb -> 'readings') AS x) AS r"""
    + _MAPPED
)
JSONB_FUNCTION = """
const pool = global.get('pgPool');
const gateway = msg.topic.split('/')[1];
pool.query(SQL, [gateway, msg.payload])
  .then(() => node.done())
  .catch((err) => node.error('insert failed: ' + err.message, msg));
return null;
"""

# node-red-per-reading: one statement per reading, up to POOL_SIZE in flight
ROW_SQL = _INSERT + "FROM (VALUES ($2::int8, $3::text, $4::text, $5::float8, $6::int2))"
ROW_SQL += " AS r (time_ms, device, metric, value, flags)" + _MAPPED
ROW_FUNCTION = """
const pool = global.get('pgPool');
const gateway = msg.topic.split('/')[1];
const readings = JSON.parse(msg.payload).readings;
Promise.all(readings.map((r) => pool.query(SQL,
    [gateway, r.time_ms, r.device, r.metric, r.value, r.flags])))
  .then(() => node.done())
  .catch((err) => node.error('insert failed: ' + err.message, msg));
return null;
"""

FLOWS = {  # kind -> (label, function node's name, its code)
    "node-red": (
        "Node-RED",
        "multi-row INSERT per message",
        f"const HEAD = {json.dumps(VALUES_HEAD)};\nconst TAIL = {json.dumps(VALUES_TAIL)};\n"
        + VALUES_FUNCTION,
    ),
    "node-red-sql": (
        "Node-RED/SQL",
        "INSERT per message, JSON unpacked by PostgreSQL",
        f"const SQL = {json.dumps(JSONB_SQL)};\n{JSONB_FUNCTION}",
    ),
    "node-red-per-reading": (
        "Node-RED/row",
        "INSERT per reading",
        f"const SQL = {json.dumps(ROW_SQL)};\n{ROW_FUNCTION}",
    ),
}


def _installed(name: str) -> str | None:
    package = INSTALL_DIR / "node_modules" / name / "package.json"
    if not package.exists():
        return None
    return str(json.loads(package.read_text())["version"])


def _node_version() -> str:
    node = shutil.which("node")
    if node is None:
        raise PeerUnavailable(
            "the Node-RED peer needs Node.js and npm (apt-get install nodejs npm)"
        )
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip().lstrip("v")


def install(timeout_s: float = INSTALL_TIMEOUT_S) -> Path:
    """node-red and pg at the pinned versions from the npm registry, unless already there;
    returns the install folder."""
    if _installed("node-red") == NODE_RED and _installed("pg") == PG:
        return INSTALL_DIR
    node = _node_version()
    if int(node.split(".")[0]) < NODE_MAJOR_MIN:
        raise PeerUnavailable(f"Node-RED {NODE_RED} needs Node.js {NODE_MAJOR_MIN}+, not {node}")
    npm = shutil.which("npm")
    if npm is None:
        raise PeerUnavailable("the Node-RED peer needs npm (apt-get install npm)")
    print(f"installing node-red@{NODE_RED} and pg@{PG} into {INSTALL_DIR}", flush=True)
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    (INSTALL_DIR / "package.json").write_text('{"private": true}\n', encoding="utf-8")
    command = [
        npm,
        "install",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        "--save-exact",
        f"node-red@{NODE_RED}",
        f"pg@{PG}",
    ]
    try:
        subprocess.run(
            command, cwd=INSTALL_DIR, check=True, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise PeerUnavailable(
            f"npm install did not finish in {timeout_s:.0f} s: is the npm registry reachable?"
        ) from None
    except subprocess.CalledProcessError as exc:
        raise PeerUnavailable(f"npm install failed:\n{exc.stderr[-1500:]}") from None
    return INSTALL_DIR


def versions() -> dict[str, str]:
    """Node.js, Node-RED and node-postgres as installed (what is missing is left out)."""
    out: dict[str, str] = {}
    try:
        out["node"] = _node_version()
    except (PeerUnavailable, OSError, subprocess.TimeoutExpired):
        return out
    for name in ("node-red", "pg"):
        version = _installed(name)
        if version:
            out[name] = version
    return out


def _flows(broker_port: int, kind: str) -> list[dict[str, object]]:
    _label, name, func = FLOWS[kind]
    return [
        {"id": "tab", "type": "tab", "label": "ingest"},
        {
            "id": "broker",
            "type": "mqtt-broker",
            "broker": "127.0.0.1",
            "port": str(broker_port),
            "clientid": PEER_CLIENT_ID,
            "protocolVersion": "5",
            # a persistent session, as ingest has: the broker queues while Node-RED is down
            "cleansession": False,
            "sessionExpiry": "86400",
            # the editor's default (true) unsubscribes on a clean stop, which leaves the
            # session with nothing to queue: see the module's docstring
            "autoUnsubscribe": False,
            "keepalive": "30",
            "autoConnect": True,
        },
        {
            "id": "in",
            "type": "mqtt in",
            "z": "tab",
            "topic": PEER_TOPIC,
            "qos": "1",
            "datatype": "utf8",
            "broker": "broker",
            "nl": False,
            "rap": False,
            "inputs": 0,
            "wires": [["write"]],
        },
        {"id": "write", "type": "function", "z": "tab", "name": name, "func": func, "outputs": 0},
    ]


def log_path(user_dir: Path) -> Path:
    return user_dir / LOG


def errors(user_dir: Path) -> list[str]:
    """The ``[error]`` lines Node-RED logged so far (a failed insert is one)."""
    path = log_path(user_dir)
    if not path.exists():
        return []
    return [line for line in path.read_text(errors="replace").splitlines() if "[error]" in line]


def _settings(user_dir: Path, install_dir: Path) -> Path:
    settings = user_dir / "settings.js"
    settings.write_text(
        f"""
const {{ Pool }} = require({json.dumps(str(install_dir / "node_modules" / "pg"))});
module.exports = {{
  uiHost: "127.0.0.1",
  uiPort: 0,
  flowFile: "flows.json",
  credentialSecret: false,
  // the connection comes from the PG* environment, as for any libpq client
  functionGlobalContext: {{ pgPool: new Pool({{ max: {POOL_SIZE} }}) }},
  logging: {{ console: {{ level: "info", metrics: false, audit: false }} }},
}};
""",
        encoding="utf-8",
    )
    return settings


def start(user_dir: Path, broker_port: int, db: str, kind: str) -> subprocess.Popen[bytes]:
    """Node-RED running flow ``kind`` (a key of ``FLOWS``), its editor on a loopback port;
    returns once it is connected to the broker (its log, appended to, says so)."""
    install_dir = install()
    user_dir.mkdir(parents=True, exist_ok=True)
    (user_dir / "flows.json").write_text(json.dumps(_flows(broker_port, kind)))
    # unencrypted (credentialSecret false): a throwaway account of a private broker
    (user_dir / "flows_cred.json").write_text(
        json.dumps({"broker": {"user": PEER_USER, "password": PEER_USER}})
    )
    settings = _settings(user_dir, install_dir)
    # node-postgres does not read libpq's key=value strings: hand it the parts
    params = conninfo_to_dict(db)
    pg_env = {
        f"PG{key.upper()}": str(params[name])
        for key, name in (
            ("host", "host"),
            ("port", "port"),
            ("database", "dbname"),
            ("user", "user"),
            ("password", "password"),
        )
    }
    log = log_path(user_dir)
    offset = log.stat().st_size if log.exists() else 0
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                "node",
                str(install_dir / "node_modules" / "node-red" / "red.js"),
                "--userDir",
                str(user_dir),
                "--settings",
                str(settings),
            ],
            env={**os.environ, **pg_env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    text = ""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        if "Connected to broker" in text:
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    why = "it exited" if proc.poll() is not None else "timed out"
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    raise RuntimeError(
        f"Node-RED did not connect to the broker in {START_TIMEOUT_S:.0f} s ({why});"
        f" its log ({log}):\n{text[-2000:]}"
    )
