"""The peer a user would otherwise pick: a Node-RED 4.1 flow (MQTT in -> a function node
writing with node-postgres), installed by the bench from npm into ``bench/.peers/``
(ignored by git) and run against the same broker and database server with the same
messages as ingest. node-red-contrib-postgresql is not on the registry this machine
reaches, so the flow uses node-postgres from a function node, the documented way to use
an npm module in Node-RED (``functionGlobalContext``).

Two flows. The efficient one a competent user writes, not a straw man: one statement
per MQTT message, the whole batch sent as JSON and unpacked by PostgreSQL, doing in SQL
what ingest does (the device must be paired with the sending gateway, the enrollment
valid at the reading's time gives the patient, duplicates are skipped). And the one most
users build from the palette (split the batch, one INSERT per reading), with the same
SQL per row. Both do less than ingest: no per-reading validation, no dead letters, no
sequence progress, no confirmation to the gateway.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

ROOT = Path(__file__).resolve().parent.parent
INSTALL_DIR = ROOT / "bench" / ".peers" / "node-red"
NODE_RED = "4.1.15"  # the newest 4.1.x on the registry when the bench was written
PG = "8"
PEER_USER = "node-red"
# reads every home's readings, as ingest's account does
PEER_ACL = f"\nuser {PEER_USER}\ntopic read devices/+/readings\n"
# node-postgres' default pool size: as many statements in flight as a user gets untuned
POOL_SIZE = 10
LOG = "node-red.log"

# one statement per MQTT message: the payload goes to the server as it came
INSERT_SQL = """
INSERT INTO vitals (time, patient_id, device_id, metric_id, value, flags)
SELECT to_timestamp((r->>'time_ms')::bigint / 1000.0), e.patient_id, d.device_id,
       m.metric_id, (r->>'value')::float8, (r->>'flags')::int2
FROM jsonb_array_elements($1::jsonb -> 'readings') AS r
JOIN metrics m ON m.name = r->>'metric'
JOIN devices d ON d.device_id = r->>'device' AND d.gateway_id = $2
JOIN enrollments e ON e.device_id = d.device_id
 AND e.valid @> to_timestamp((r->>'time_ms')::bigint / 1000.0)
ON CONFLICT (device_id, metric_id, time) DO NOTHING
"""

# the flow most users build (MQTT in -> split -> a PostgreSQL node): one statement per
# reading, node-postgres' pool keeping up to POOL_SIZE of them in flight
ROW_SQL = """
INSERT INTO vitals (time, patient_id, device_id, metric_id, value, flags)
SELECT to_timestamp($1::bigint / 1000.0), e.patient_id, d.device_id, m.metric_id,
       $4::float8, $5::int2
FROM metrics m
JOIN devices d ON d.device_id = $2 AND d.gateway_id = $6
JOIN enrollments e ON e.device_id = d.device_id
 AND e.valid @> to_timestamp($1::bigint / 1000.0)
WHERE m.name = $3
ON CONFLICT (device_id, metric_id, time) DO NOTHING
"""

ROW_FUNCTION = """
const pool = global.get('pgPool');
const gateway = msg.topic.split('/')[1];
const readings = JSON.parse(msg.payload).readings;
Promise.all(readings.map((r) => pool.query(SQL,
    [r.time_ms, r.device, r.metric, r.value, r.flags, gateway])))
  .then(() => node.done())
  .catch((err) => node.error('insert failed: ' + err.message, msg));
return null;
"""

# errors go to the Node-RED log through node.error, where the bench looks for them
FUNCTION = """
const pool = global.get('pgPool');
const gateway = msg.topic.split('/')[1];
pool.query(SQL, [msg.payload, gateway])
  .then(() => node.done())
  .catch((err) => node.error('insert failed: ' + err.message, msg));
return null;
"""


def install() -> Path:
    """node-red and pg from the npm registry, once; returns the install folder."""
    marker = INSTALL_DIR / "node_modules" / "node-red" / "package.json"
    if marker.exists() and json.loads(marker.read_text())["version"] == NODE_RED:
        return INSTALL_DIR
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("the Node-RED peer needs Node.js and npm (apt-get install nodejs npm)")
    print(f"installing node-red@{NODE_RED} and pg@{PG} into {INSTALL_DIR}", flush=True)
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    (INSTALL_DIR / "package.json").write_text('{"private": true}\n', encoding="utf-8")
    subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--save-exact",
            f"node-red@{NODE_RED}",
            f"pg@{PG}",
        ],
        cwd=INSTALL_DIR,
        check=True,
    )
    return INSTALL_DIR


def versions() -> dict[str, str]:
    """Node.js, Node-RED and node-postgres as installed, for the results."""
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    out = {"node": node.stdout.strip().lstrip("v")}
    for name in ("node-red", "pg"):
        package = INSTALL_DIR / "node_modules" / name / "package.json"
        out[name] = json.loads(package.read_text())["version"]
    return out


def _flows(broker_port: int, per_reading: bool) -> list[dict[str, object]]:
    func = (
        f"const SQL = {json.dumps(ROW_SQL)};\n{ROW_FUNCTION}"
        if per_reading
        else f"const SQL = {json.dumps(INSERT_SQL)};\n{FUNCTION}"
    )
    return [
        {"id": "tab", "type": "tab", "label": "ingest"},
        {
            "id": "broker",
            "type": "mqtt-broker",
            "broker": "127.0.0.1",
            "port": str(broker_port),
            "clientid": "node-red-peer",
            "protocolVersion": "5",
            # a persistent session, as ingest has: the broker queues while Node-RED is down
            "cleansession": False,
            "sessionExpiry": "86400",
            # the editor's default unsubscribes on shutdown, which empties the session and
            # leaves nothing queued (the bench once waited forever for rows because of it)
            "autoUnsubscribe": False,
            "keepalive": "30",
            "autoConnect": True,
        },
        {
            "id": "in",
            "type": "mqtt in",
            "z": "tab",
            "topic": "devices/+/readings",
            "qos": "1",
            "datatype": "utf8",
            "broker": "broker",
            "nl": False,
            "rap": False,
            "inputs": 0,
            "wires": [["write"]],
        },
        {
            "id": "write",
            "type": "function",
            "z": "tab",
            "name": "INSERT per reading" if per_reading else "INSERT batch",
            "func": func,
            "outputs": 0,
            "wires": [],
        },
    ]


def log_path(user_dir: Path) -> Path:
    return user_dir / LOG


def errors(user_dir: Path) -> list[str]:
    """The ``[error]`` lines Node-RED logged so far (a failed insert is one)."""
    path = log_path(user_dir)
    if not path.exists():
        return []
    return [line for line in path.read_text(errors="replace").splitlines() if "[error]" in line]


def start(
    user_dir: Path, broker_port: int, db: str, per_reading: bool = False
) -> subprocess.Popen[bytes]:
    """Node-RED with the flow (one statement per message, or per reading), its editor on
    a loopback port; returns once it is connected to the broker (it subscribes at once;
    its log is appended to)."""
    install_dir = install()
    user_dir.mkdir(parents=True, exist_ok=True)
    (user_dir / "flows.json").write_text(json.dumps(_flows(broker_port, per_reading)))
    # unencrypted (credentialSecret false): a throwaway account of a private broker
    (user_dir / "flows_cred.json").write_text(
        json.dumps({"broker": {"user": PEER_USER, "password": PEER_USER}})
    )
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
    # node-postgres does not read libpq's key=value strings: hand it the parts
    params = conninfo_to_dict(db)
    pg_env = {
        "PGHOST": str(params["host"]),
        "PGPORT": str(params["port"]),
        "PGDATABASE": str(params["dbname"]),
        "PGUSER": str(params["user"]),
        "PGPASSWORD": str(params["password"]),
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
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        if "Connected to broker" in text:
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.terminate()
    proc.wait(10)
    raise RuntimeError(f"Node-RED did not connect to the broker:\n{text[-2000:]}")
