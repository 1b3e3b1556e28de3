"""Ingest throughput, broker to committed rows, against raw binary COPY of the same rows
into the same schema, both measured in this run on this machine.

The broker is loaded first (ingest's persistent session is offline, so Mosquitto queues
every message), then one ingest process drains it; the rate is taken between the first
and the last committed row, so process start-up is not counted. The reference is psycopg
binary COPY of identical rows (patient already resolved, no validation, no dedup) into a
fresh database with the same indexes: the hardware limit for this table on this machine.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from bench.broker_counters import MONITOR_PASSWORD, MONITOR_USER, read_counter
from bench.private_services import INGEST_PASSWORD, private_services, service_env
from postop.local_mosquitto import write_accounts
from store.migrate import migrate
from store.mqtt_accounts import hash_password
from store.provisioning import (
    enroll,
    ensure_patient,
    ensure_team,
    register_device,
    register_gateway,
)
from vitals.catalogue import CATALOGUE
from vitals.wire import encode_batch

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Result:
    readings: int
    readings_per_message: int
    gateways: int
    copy_rows_per_s: float
    ingest_rows_per_s: float
    ratio: float
    ingest_cpu_s: float
    broker_cpu_s: float
    flavour: str
    workers: int
    broker_dropped_delta: int  # Mosquitto's $SYS dropped-message counter: must stay 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _readings(gateways: int, per_gateway: int) -> dict[str, list[dict[str, Any]]]:
    metrics = [m for m in CATALOGUE if m.kind == "vital"]
    t0 = int(START.timestamp() * 1000)
    out: dict[str, list[dict[str, Any]]] = {}
    for g in range(gateways):
        rows = []
        for i in range(per_gateway):
            m = metrics[i % len(metrics)]
            rows.append(
                {
                    "seq": i,
                    "device": f"dev-{g}-{i % 3}",
                    "metric": m.name,
                    "time_ms": t0 + (i // len(metrics)) * 1000,
                    "value": round((m.plausible_min + m.plausible_max) / 2, 1),
                    "flags": 0,
                }
            )
        out[f"gw-bench-{g}"] = rows
    return out


def _provision(conninfo: str, data: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    patients = {}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        team = ensure_team(conn, "bench")
        for gw in data:
            patient = ensure_patient(conn, f"P-{gw}", team)
            register_gateway(conn, gw)
            for d in range(3):
                dev = f"dev-{gw.rsplit('-', 1)[1]}-{d}"
                register_device(conn, dev, "bench", gw)
                enroll(conn, dev, patient, START)
            patients[gw] = patient
    return patients


def _copy_reference(
    conninfo: str, data: dict[str, list[dict[str, Any]]], patients: dict[str, int]
) -> float:
    ids = {m.name: m.metric_id for m in CATALOGUE}
    rows = [
        (
            datetime.fromtimestamp(int(r["time_ms"]) / 1000, UTC),
            patients[gw],
            r["device"],
            ids[str(r["metric"])],
            r["value"],
            0,
        )
        for gw, readings in data.items()
        for r in readings
    ]
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        t = time.perf_counter()
        with cur.copy(
            "COPY vitals (time, patient_id, device_id, metric_id, value, flags)"
            " FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["timestamptz", "int8", "text", "int2", "float8", "int2"])
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return len(rows) / (time.perf_counter() - t)


def _ingest(env: dict[str, str], cwd: Path, worker: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ingest.main"],
        cwd=cwd,
        env={**env, "POSTOP_INGEST__CLIENT_ID": f"ingest-{worker + 1}"},
    )


def _count(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM vitals").fetchone()
    return int(row[0]) if row else 0


def run(
    total_readings: int = 600_000,
    per_message: int = 1000,
    gateways: int = 4,
    timescaledb: bool = False,
    workers: int = 1,
) -> Result:
    with private_services("postop-bench-", timescaledb=timescaledb) as (tmp, pg, broker, procs):
        data = _readings(gateways, total_readings // gateways)
        ref_db = pg.create_database("reference")
        migrate(ref_db)
        patients = _provision(ref_db, data)
        copy_rate = _copy_reference(ref_db, data, patients)

        db = pg.create_database("pipeline")
        migrate(db)
        _provision(db, data)
        accounts = {
            "ingest": hash_password(INGEST_PASSWORD),
            MONITOR_USER: hash_password(MONITOR_PASSWORD),
        }
        accounts.update({gw: hash_password("bench-gw") for gw in data})
        broker.write_config()
        broker.start()
        write_accounts(broker, accounts)
        env = service_env(db, broker.port)
        dropped0 = read_counter(broker.port)
        # one short run per worker creates its persistent session in the shared group
        procs.extend(_ingest(env, tmp, w) for w in range(workers))
        time.sleep(3)
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        for gw, readings in data.items():
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=gw, protocol=mqtt.MQTTv5)
            client.username_pw_set(gw, "bench-gw")
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            infos = [
                client.publish(
                    f"devices/{gw}/readings",
                    encode_batch(gw, 0, readings[i : i + per_message]),
                    qos=1,
                )
                for i in range(0, len(readings), per_message)
            ]
            for info in infos:
                info.wait_for_publish(60)
            client.disconnect()
            client.loop_stop()
        assert broker.proc is not None
        broker_cpu0 = _cpu_seconds(broker.proc.pid)
        procs[:] = [_ingest(env, tmp, w) for w in range(workers)]
        with psycopg.connect(db, autocommit=True) as conn:
            first_n, first_t = 0, 0.0
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                n = _count(conn)
                now = time.perf_counter()
                if n and not first_n:
                    first_n, first_t = n, now
                if n >= total_readings:
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"ingest stored only {n} of {total_readings} readings")
        ingest_rate = (n - first_n) / (now - first_t)
        ingest_cpu = sum(_cpu_seconds(proc.pid) for proc in procs)
        broker_cpu = _cpu_seconds(broker.proc.pid) - broker_cpu0
        time.sleep(1.5)  # the broker publishes its $SYS counters every second here
        dropped = read_counter(broker.port) - dropped0
        flavour = "timescaledb" if timescaledb else "postgres"
        return Result(
            total_readings,
            per_message,
            gateways,
            copy_rate,
            ingest_rate,
            ingest_rate / copy_rate,
            ingest_cpu,
            broker_cpu,
            flavour,
            workers,
            dropped,
        )


def main() -> None:
    from postop.local_postgres import find_binaries, timescaledb_installed

    flavours = [False] + ([True] if timescaledb_installed(find_binaries()) else [])
    # one worker per flavour, then two workers on the shared subscription (the scale-out)
    results = [run(timescaledb=t) for t in flavours] + [run(workers=2)]
    print(
        f"{'flavour':>12} {'workers':>7} {'readings':>9} {'per msg':>8} {'COPY rows/s':>12}"
        f" {'ingest rows/s':>14} {'ratio':>6} {'ingest CPU s':>13} {'dropped':>8}"
    )
    for r in results:
        print(
            f"{r.flavour:>12} {r.workers:>7} {r.readings:>9} {r.readings_per_message:>8}"
            f" {r.copy_rows_per_s:>12.0f} {r.ingest_rows_per_s:>14.0f} {r.ratio:>6.2f}"
            f" {r.ingest_cpu_s:>13.1f} {r.broker_dropped_delta:>8}"
        )
    out = ROOT / "bench" / "results" / "ingest_throughput.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "ingest_throughput",
                "at": datetime.now(UTC).isoformat(),
                "machine": {
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                },
                "results": [asdict(r) for r in results],
            },
            indent=2,
        )
    )
    print(f"written to {out}")
    if any(r.broker_dropped_delta for r in results):
        raise SystemExit("the broker dropped messages during the run: readings were lost")


if __name__ == "__main__":
    main()
