"""Ingest throughput, broker to committed rows, against raw binary COPY of the same rows
and against the Node-RED peer flow, all in one run on one PostgreSQL server and one
Mosquitto broker with the same MQTT messages.

For each consumer (ingest with one worker, ingest with two on the shared subscription,
Node-RED) the broker is loaded first while the consumer's persistent session is offline,
so Mosquitto queues every message; then the consumer drains it into a fresh database.
The rate is taken between the first and the last committed row, so process start-up is
not counted. The reference is psycopg binary COPY of identical rows (patient already
resolved, no validation, no dedup) into a fresh database with the same indexes: the
hardware limit for this table on this machine.

CPU seconds are counted for each process over the drain (consumer start to last row):
the consumer processes, the broker, and PostgreSQL (postmaster and every backend).

Run: ``uv run python -m bench.ingest_throughput [--timescaledb] [--no-node-red]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql

from bench import node_red_peer
from bench.broker_counters import MONITOR_PASSWORD, MONITOR_USER, read_counter
from bench.node_red_peer import PEER_USER
from bench.private_services import INGEST_PASSWORD, private_services, service_env
from postop.local_mosquitto import LocalMosquitto, find_mosquitto, write_accounts
from postop.local_postgres import LocalPostgres, find_binaries
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
STALL_S = 60.0  # no new row for this long: the consumer is stuck, say so and stop
PROGRESS_S = 5.0


@dataclass(frozen=True)
class Consumer:
    """What drains the broker: ``ingest`` with ``workers`` processes, or a Node-RED flow
    (``node-red``: a statement per message, ``node-red-per-reading``: one per reading);
    ``readings`` (0: all) lets a slow peer take the first messages only."""

    kind: str
    workers: int = 1
    readings: int = 0

    @property
    def label(self) -> str:
        labels = {"node-red": "Node-RED", "node-red-per-reading": "Node-RED/row"}
        return labels.get(self.kind, f"ingest x{self.workers}")


@dataclass(frozen=True)
class Result:
    consumer: str
    workers: int
    flavour: str
    readings: int
    readings_per_message: int
    gateways: int
    copy_rows_per_s: float  # COPY of all the run's readings, same server, same run
    rows_per_s: float
    ratio_to_copy: float
    drain_s: float  # consumer start to last committed row
    consumer_cpu_s: float  # every consumer process, over the drain (start-up included)
    broker_cpu_s: float  # over the drain
    postgres_cpu_s: float  # postmaster and all backends, over the drain
    broker_dropped_delta: int  # Mosquitto's $SYS dropped-message counter: must stay 0


def _cpu_seconds(pid: int, children: bool = False) -> float:
    """utime + stime of a live process (with ``children``: plus its reaped children's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _postgres_cpu(pg: LocalPostgres) -> float:
    """CPU of the whole server so far: the postmaster with the backends it reaped, plus
    every backend alive now (a backend that exits moves from one sum to the other)."""
    postmaster = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
    total = _cpu_seconds(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                total += _cpu_seconds(int(entry.name))
        except (OSError, ValueError):
            continue  # gone meanwhile
    return total


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


def _publish(port: int, messages: dict[str, list[bytes]]) -> None:
    """Every gateway's messages at QoS 1, each acknowledged by the broker."""
    for gw, payloads in messages.items():
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=gw, protocol=mqtt.MQTTv5)
        client.username_pw_set(gw, "bench-gw")
        client.connect("127.0.0.1", port)
        client.loop_start()
        infos = [client.publish(f"devices/{gw}/readings", p, qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(60)
        client.disconnect()
        client.loop_stop()


def _forget_session(port: int, client_id: str, user: str, password: str) -> None:
    """Connect as ``client_id`` with a clean start and no expiry: the broker discards its
    session, so it queues nothing for a consumer whose turn is over."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    client.connect("127.0.0.1", port, clean_start=True)
    client.loop_start()
    time.sleep(0.3)
    client.disconnect()
    client.loop_stop()


def _broker_log(broker: LocalMosquitto) -> Path:
    return broker.root / "mosquitto.log"


def _wait_connected(
    broker: LocalMosquitto, client_ids: Sequence[str], offset: int, timeout_s: float = 60
) -> None:
    """Until the broker logs every client's connection after ``offset`` (its log size
    before they were started)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with _broker_log(broker).open("rb") as f:
            f.seek(offset)
            log = f.read().decode(errors="replace")
        if all(f" as {c} " in log for c in client_ids):
            time.sleep(1.0)  # each subscribes right after connecting
            return
        time.sleep(0.2)
    raise RuntimeError(f"{', '.join(client_ids)} did not connect to the broker")


def _drain(
    c: Consumer,
    db: str,
    total: int,
    procs: list[subprocess.Popen[bytes]],
    problems: Callable[[], str],
) -> tuple[float, float]:
    """Poll the row count until ``total`` rows are stored: returns the rate between the
    first and the last committed row and the time of the last. Progress is printed every
    few seconds; a dead consumer, a logged error or a stall ends the wait with a reason.
    Polls are frequent only near the start and the end, where they set the timing (a
    count over a growing table costs the server CPU that the consumer could use)."""
    with psycopg.connect(db, autocommit=True) as conn:
        first_n, first_t, n, now = 0, 0.0, 0, time.perf_counter()
        last_change, last_progress, last_n = now, now, 0
        while True:
            n = _count(conn)
            now = time.perf_counter()
            if n and not first_n:
                first_n, first_t = n, now
            if n >= total:
                return (n - first_n) / (now - first_t), now
            if n != last_n:
                last_n, last_change = n, now
            dead = [p.args for p in procs if p.poll() is not None]
            trouble = problems()
            if dead or trouble or now - last_change > STALL_S:
                why = f"exited: {dead}" if dead else trouble or f"no new row for {STALL_S:.0f} s"
                raise RuntimeError(f"{c.label} stored only {n:,} of {total:,} readings: {why}")
            if now - last_progress >= PROGRESS_S:
                rate = (n - first_n) / (now - first_t) if first_n and now > first_t else 0.0
                print(f"  {c.label}: {n:,}/{total:,} rows, {rate:,.0f} rows/s", flush=True)
                last_progress = now
            if first_n and n > first_n:
                rate = (n - first_n) / (now - first_t)
                time.sleep(min(1.0, max(0.05, (total - n) / rate / 4)))
            else:
                time.sleep(0.05)


@dataclass(frozen=True)
class _Services:
    """What every consumer of one run shares."""

    tmp: Path
    pg: LocalPostgres
    broker: LocalMosquitto
    procs: list[subprocess.Popen[bytes]]
    broker_pid: int


def run(
    consumers: Sequence[Consumer],
    total_readings: int = 600_000,
    per_message: int = 1000,
    gateways: int = 4,
    timescaledb: bool = False,
) -> list[Result]:
    """Each consumer in turn, one broker and one PostgreSQL server for all of them."""
    flavour = "timescaledb" if timescaledb else "postgres"
    with private_services("postop-bench-", timescaledb=timescaledb) as (tmp, pg, broker, procs):
        data = _readings(gateways, total_readings // gateways)
        # built once: every consumer gets the very same bytes
        messages = {
            gw: [
                encode_batch(gw, 0, rows[i : i + per_message])
                for i in range(0, len(rows), per_message)
            ]
            for gw, rows in data.items()
        }
        ref_db = pg.create_database("reference")
        migrate(ref_db)
        patients = _provision(ref_db, data)
        copy_rate = _copy_reference(ref_db, data, patients)
        print(f"  COPY: {copy_rate:,.0f} rows/s", flush=True)
        _drop(pg, "reference")

        accounts = {
            "ingest": hash_password(INGEST_PASSWORD),
            MONITOR_USER: hash_password(MONITOR_PASSWORD),
            PEER_USER: hash_password(PEER_USER),
        }
        accounts.update({gw: hash_password("bench-gw") for gw in data})
        broker.write_config()
        broker.start()
        write_accounts(broker, accounts)
        assert broker.proc is not None
        services = _Services(tmp, pg, broker, procs, broker.proc.pid)
        results = []
        for i, c in enumerate(consumers):
            n_messages = (c.readings or total_readings) // gateways // per_message
            load = {gw: payloads[:n_messages] for gw, payloads in messages.items()}
            total = n_messages * per_message * gateways
            rate, drain_s, cpu, dropped = _measure(services, c, f"pipeline{i}", data, load, total)
            result = Result(
                c.kind,
                c.workers,
                flavour,
                total,
                per_message,
                gateways,
                copy_rate,
                rate,
                rate / copy_rate,
                drain_s,
                *cpu,
                dropped,
            )
            print(
                f"  {c.label}: {rate:,.0f} rows/s ({result.ratio_to_copy:.2f} of COPY),"
                f" CPU s: consumer {cpu[0]:.1f}, broker {cpu[1]:.1f}, postgres {cpu[2]:.1f};"
                f" dropped {dropped}",
                flush=True,
            )
            results.append(result)
        return results


def _measure(
    s: _Services,
    c: Consumer,
    name: str,
    data: dict[str, list[dict[str, Any]]],
    load: dict[str, list[bytes]],
    total: int,
) -> tuple[float, float, tuple[float, float, float], int]:
    """One consumer drains ``load`` (``total`` readings) into a fresh database ``name``:
    rows per second, drain seconds, CPU seconds (consumer, broker, PostgreSQL) and the
    broker's dropped-counter delta."""
    db = s.pg.create_database(name)
    migrate(db)
    _provision(db, data)
    env = service_env(db, s.broker.port)
    user_dir = s.tmp / f"node-red-{name}"
    if c.kind.startswith("node-red"):
        client_ids, login = ["node-red-peer"], (PEER_USER, PEER_USER)
    else:
        client_ids = [f"ingest-{w + 1}" for w in range(c.workers)]
        login = ("ingest", INGEST_PASSWORD)

    def start() -> None:
        if c.kind.startswith("node-red"):
            per_reading = c.kind == "node-red-per-reading"
            s.procs.append(node_red_peer.start(user_dir, s.broker.port, db, per_reading))
        else:
            s.procs.extend(_ingest(env, s.tmp, w) for w in range(c.workers))

    def problems() -> str:
        return "\n".join(node_red_peer.errors(user_dir)[:5])

    # a first short run creates the persistent sessions (the shared group for ingest)
    offset = _broker_log(s.broker).stat().st_size
    start()
    _wait_connected(s.broker, client_ids, offset)
    _stop(s.procs)
    dropped0 = read_counter(s.broker.port)
    _publish(s.broker.port, load)
    print(f"  {c.label}: {total:,} readings queued, draining", flush=True)
    broker_cpu0, pg_cpu0 = _cpu_seconds(s.broker_pid), _postgres_cpu(s.pg)
    t0 = time.perf_counter()
    start()
    rate, t_end = _drain(c, db, total, s.procs, problems)
    consumer_cpu = sum(_cpu_seconds(p.pid) for p in s.procs)
    broker_cpu = _cpu_seconds(s.broker_pid) - broker_cpu0
    pg_cpu = _postgres_cpu(s.pg) - pg_cpu0
    _stop(s.procs)
    time.sleep(1.5)  # the broker publishes its $SYS counters every second here
    dropped = read_counter(s.broker.port) - dropped0
    for client_id in client_ids:
        _forget_session(s.broker.port, client_id, *login)
    _drop(s.pg, name)
    return rate, t_end - t0, (consumer_cpu, broker_cpu, pg_cpu), dropped


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(15)
    procs.clear()


def _drop(pg: LocalPostgres, name: str) -> None:
    """A measured database goes once done, so that the next consumer's pages are the
    only ones competing for the server's cache."""
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def environment() -> dict[str, Any]:
    """The machine and the versions of what ran, for the results."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor(),
    )
    os_release = Path("/etc/os-release")
    pretty = ""
    if os_release.exists():
        for line in os_release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip('"')
    pg_version = subprocess.run(
        [find_binaries().tool("postgres"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    mosquitto = subprocess.run([find_mosquitto(), "-h"], capture_output=True, text=True)
    mosquitto_version = (mosquitto.stdout or mosquitto.stderr).splitlines()[0].strip()
    versions = {
        "python": platform.python_version(),
        "postgres": pg_version.rsplit(" ", 1)[-1],
        "mosquitto": mosquitto_version.rsplit(" ", 1)[-1],
        "psycopg": psycopg.__version__,
    }
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        versions.update(node_red_peer.versions())  # unless Node.js or the peer is missing
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_model": model,
            "platform": platform.platform(),
            "os": pretty,
        },
        "versions": versions,
    }


def suite(
    readings: int = 600_000, node_red_readings: int = 60_000, timescaledb: bool = False
) -> list[Result]:
    """Ingest with one worker, with two on the shared subscription, then the Node-RED
    peer: its batch flow on the same load, its per-reading flow on the first messages
    (it is far slower; the rate needs no more)."""
    consumers = [Consumer("ingest", 1), Consumer("ingest", 2)]
    if node_red_readings:
        consumers.append(Consumer("node-red", 1))
        consumers.append(Consumer("node-red-per-reading", 1, node_red_readings))
    return run(consumers, total_readings=readings, timescaledb=timescaledb)


def table(results: Sequence[Result]) -> str:
    lines = [
        f"{'consumer':<12} {'flavour':<11} {'readings':>9} {'rows/s':>9} {'of COPY':>7}"
        f" {'CPU s: consumer':>15} {'broker':>6} {'postgres':>8} {'dropped':>7}"
    ]
    for r in results:
        label = Consumer(r.consumer, r.workers).label
        lines.append(
            f"{label:<12} {r.flavour:<11} {r.readings:>9,} {r.rows_per_s:>9,.0f}"
            f" {r.ratio_to_copy:>7.2f} {r.consumer_cpu_s:>15.1f} {r.broker_cpu_s:>6.1f}"
            f" {r.postgres_cpu_s:>8.1f} {r.broker_dropped_delta:>7}"
        )
    if results:
        lines.append(f"COPY reference: {results[0].copy_rows_per_s:,.0f} rows/s")
    return "\n".join(lines)


def ratios(results: Sequence[Result]) -> dict[str, float]:
    """The figures the targets are about, from one run's results."""
    by = {(r.consumer, r.workers): r.rows_per_s for r in results}
    out: dict[str, float] = {}
    one = by.get(("ingest", 1))
    if one:
        out["ingest_to_copy"] = one / results[0].copy_rows_per_s
        if ("ingest", 2) in by:
            out["two_workers_scaling"] = by[("ingest", 2)] / one
        if ("node-red", 1) in by:
            out["ingest_to_node_red"] = one / by[("node-red", 1)]
        if ("node-red-per-reading", 1) in by:
            out["ingest_to_node_red_per_reading"] = one / by[("node-red-per-reading", 1)]
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench.ingest_throughput")
    parser.add_argument("--readings", type=int, default=600_000)
    parser.add_argument("--node-red-readings", type=int, default=60_000)
    parser.add_argument("--no-node-red", action="store_true")
    parser.add_argument("--timescaledb", action="store_true")
    args = parser.parse_args(argv)
    node_red = 0 if args.no_node_red else args.node_red_readings
    results = suite(args.readings, node_red, args.timescaledb)
    print(table(results))
    summary = {
        "benchmark": "ingest_throughput",
        "at": datetime.now(UTC).isoformat(),
        **environment(),
        "ratios": ratios(results),
        "results": [asdict(r) for r in results],
    }
    out = ROOT / "bench" / "results" / "ingest_throughput.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"written to {out}")
    if any(r.broker_dropped_delta for r in results):
        raise SystemExit("the broker dropped messages during the run: readings were lost")
    return summary


if __name__ == "__main__":
    main()
