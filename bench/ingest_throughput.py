"""Ingest throughput, broker to committed rows, against raw binary COPY of the same rows
and against the Node-RED peer flows, all in one run on one PostgreSQL server and one
Mosquitto broker with the same MQTT messages.

For each consumer (ingest with one worker, ingest with two on the shared subscription, the
Node-RED flows) the broker is loaded first while the consumer's persistent session is
offline, so Mosquitto queues every message; then the consumer drains it into a fresh
database. One message in ``replay_every`` is published twice in a row, as a gateway
replaying after a lost confirmation does: the rows must come out de-duplicated. The rate
is taken between the first and the last committed row, so process start-up is not
counted; once done, the rows are counted and must equal the distinct readings published,
exactly. The
reference is psycopg binary COPY of the same rows (patient already resolved, no
validation, no de-duplication) into a fresh database with the same indexes: the hardware
limit for this table on this machine. With the timescaledb extension installed, ingest and
COPY run again on a hypertable.

A full run goes through the consumers twice and reports each by its fastest round (every
round's rate is in the JSON): on a shared machine other work only ever slows a round down.
CPU seconds are counted per process over the drain (consumer start to last row): each
consumer process (start-up included), the broker, and PostgreSQL (postmaster and every
backend). Mosquitto's ``$SYS`` dropped-message counter is followed over the whole run.

Run: ``uv run python -m bench.ingest_throughput [--quick] [--no-node-red] [--no-scaling]``
(``--help`` for the sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql

from bench import node_red_peer
from bench.broker_counters import CounterWatch, monitor_account
from bench.node_red_peer import PEER_CLIENT_ID, PEER_TOPIC, PEER_USER
from bench.private_services import INGEST_PASSWORD, private_services, service_env, stop_all
from postop.local_mosquitto import LocalMosquitto, find_mosquitto
from postop.local_postgres import LocalPostgres, PgBinaries, find_binaries, timescaledb_installed
from store.broker_acl import gateway_account, ingest_account
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
RESULTS = ROOT / "bench" / "results" / "ingest_throughput.json"
START = datetime(2026, 1, 1, tzinfo=UTC)
INGEST_TOPIC = "$share/ingest/devices/+/readings"
STALL_S = 60.0  # no new row for this long: the consumer is stuck, say so and stop
MIN_RATE = 500.0  # rows/s: a drain slower than this on average is declared stuck too
PROGRESS_S = 5.0
COPY_RUNS = 3  # the reference is their median: one COPY on a noisy machine is not enough
# one message in this many is published twice (the first of each gateway, then every
# 100th): a replay sends ingest's whole batch (up to 20 messages) down its careful path
REPLAY_EVERY = 100
PUBLISH_TIMEOUT_S = 120.0
SUBSCRIBE_TIMEOUT_S = 60.0
FULL = {"readings": 600_000, "node_red_readings": 60_000, "rounds": 2}
QUICK = {"readings": 40_000, "node_red_readings": 8_000, "rounds": 1}


@dataclass(frozen=True)
class Consumer:
    """What drains the broker: ``ingest`` with ``workers`` processes, or a Node-RED flow
    (a key of ``node_red_peer.FLOWS``); ``readings`` (0: all) lets a slow peer take the
    first messages only; without ``replay``, no message is sent twice (what replays cost)."""

    kind: str
    workers: int = 1
    readings: int = 0
    replay: bool = True  # False: the same load without its replayed messages

    @property
    def label(self) -> str:
        if self.kind in node_red_peer.FLOWS:
            label = node_red_peer.FLOWS[self.kind][0]
        else:
            label = f"ingest x{self.workers}"
        return label if self.replay else f"{label} no replay"

    @property
    def client_ids(self) -> list[str]:
        if self.kind in node_red_peer.FLOWS:
            return [PEER_CLIENT_ID]
        return [f"ingest-{w + 1}" for w in range(self.workers)]


@dataclass(frozen=True)
class Result:
    consumer: str
    label: str
    workers: int
    flavour: str  # postgres or timescaledb (hypertable)
    readings: int  # distinct readings published
    messages: int  # MQTT messages published, replays included
    replayed_messages: int
    replay: bool
    readings_per_message: int
    gateways: int
    rows_stored: int  # counted once drained: must equal readings
    distinct_keys: int  # distinct (device, metric, time) among them: must equal rows_stored
    copy_rows_per_s: float  # COPY of all the run's readings, same server, same run
    rows_per_s: float
    ratio_to_copy: float
    drain_s: float  # consumer start to last committed row
    cpu_s: dict[str, float] = field(default_factory=dict)  # per process, over the drain
    broker_dropped_delta: int = 0  # Mosquitto's $SYS dropped-message counter: must stay 0
    round_rates: list[float] = field(default_factory=list)  # rows/s of every round

    @property
    def consumer_cpu_s(self) -> float:
        return sum(v for k, v in self.cpu_s.items() if k not in ("mosquitto", "postgres"))

    @property
    def exact(self) -> bool:
        """No reading lost, none stored twice, nothing dropped by the broker."""
        return (
            self.rows_stored == self.readings == self.distinct_keys
            and self.broker_dropped_delta == 0
        )


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


Readings = dict[str, list[dict[str, Any]]]  # per gateway


def _readings(gateways: int, per_gateway: int) -> Readings:
    metrics = [m for m in CATALOGUE if m.kind == "vital"]
    t0 = int(START.timestamp() * 1000)
    out: Readings = {}
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


def _provision(conninfo: str, data: Readings) -> dict[str, int]:
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


def _copy_reference(conninfo: str, data: Readings, patients: dict[str, int]) -> float:
    """Rows per second of one binary COPY of every reading into an empty table."""
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
        cur.execute("TRUNCATE vitals")  # the previous repetition's rows
        conn.commit()
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


def _ingest(env: dict[str, str], cwd: Path, client_id: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ingest.main"],
        cwd=cwd,
        # each worker its own account, bound to its client id
        env={**env, "POSTOP_MQTT__USERNAME": client_id, "POSTOP_INGEST__CLIENT_ID": client_id},
    )


def _connect(db: str) -> psycopg.Connection:
    """The bench's own connection: no statement of it may wait forever."""
    return psycopg.connect(db, autocommit=True, options="-c statement_timeout=120000")


def _count(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM vitals").fetchone()
    return int(row[0]) if row else 0


def _publish(port: int, messages: dict[str, list[bytes]]) -> None:
    """Every gateway's messages at QoS 1, each acknowledged by the broker."""
    deadline = time.monotonic() + PUBLISH_TIMEOUT_S
    for gw, payloads in messages.items():
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=gw, protocol=mqtt.MQTTv5)
        client.username_pw_set(gw, "bench-gw")
        client.connect("127.0.0.1", port)
        client.loop_start()
        try:
            infos = [client.publish(f"devices/{gw}/readings", p, qos=1) for p in payloads]
            for info in infos:
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
                if not info.is_published():
                    raise RuntimeError(
                        f"the broker did not acknowledge {gw}'s messages within"
                        f" {PUBLISH_TIMEOUT_S:.0f} s"
                    )
        finally:
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


def _log_since(broker: LocalMosquitto, offset: int) -> str:
    with (broker.root / "mosquitto.log").open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _subscription(log: str, client_id: str, topic: str) -> bool | None:
    """The client's last word on ``topic`` in this part of the broker's log: True for a
    subscription (``<t>: <client> <qos> <topic>``), False for an unsubscription
    (``<t>: <client> <topic>``), None for neither."""
    state = None
    for line in log.splitlines():
        parts = line.split(" ")
        if len(parts) == 4 and parts[1:] == [client_id, parts[2], topic] and parts[2].isdigit():
            state = True
        elif len(parts) == 3 and parts[1:] == [client_id, topic]:
            state = False
    return state


def _wait_subscribed(
    broker: LocalMosquitto, client_ids: Sequence[str], topic: str, offset: int
) -> None:
    """Until the broker logs every client's subscription after ``offset``."""
    deadline = time.monotonic() + SUBSCRIBE_TIMEOUT_S
    while time.monotonic() < deadline:
        log = _log_since(broker, offset)
        if all(_subscription(log, c, topic) for c in client_ids):
            return
        time.sleep(0.2)
    raise RuntimeError(
        f"{', '.join(client_ids)} did not subscribe to {topic} within"
        f" {SUBSCRIBE_TIMEOUT_S:.0f} s; the broker's log:\n{broker.log_tail()}"
    )


def _drain(
    c: Consumer,
    conn: psycopg.Connection,
    total: int,
    procs: list[subprocess.Popen[bytes]],
    problems: Callable[[], str],
    t0: float,
) -> tuple[float, float]:
    """Poll the row count until ``total`` rows are stored: returns the rate between the
    first and the last committed row and the time of the last. Progress is printed every
    few seconds; a dead consumer, a logged error, a stall or a drain too slow to finish
    ends the wait with a reason. Polls are frequent only near the start and the end,
    where they set the timing (a count over a growing table costs the server CPU that the
    consumer could use)."""
    first_n, first_t, n, now = 0, 0.0, 0, t0
    last_change, last_progress, last_n = now, now, 0
    deadline = now + STALL_S + total / MIN_RATE
    while True:
        n = _count(conn)
        now = time.perf_counter()
        if n and not first_n:
            first_n, first_t = n, now
        if n >= total:
            if first_n == n:  # all there at the first look: count from the start instead
                return n / (now - t0), now
            return (n - first_n) / (now - first_t), now
        if n != last_n:
            last_n, last_change = n, now
        dead = [p.args for p in procs if p.poll() is not None]
        trouble = problems()
        if dead or trouble or now - last_change > STALL_S or now > deadline:
            why = (
                f"exited: {dead}"
                if dead
                else trouble
                or (
                    f"no new row for {STALL_S:.0f} s"
                    if now - last_change > STALL_S
                    else f"slower than {MIN_RATE:.0f} rows/s"
                )
            )
            if not n:
                why += " (nothing at all: can its broker account read the topic? see the logs)"
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
    dropped: CounterWatch


@dataclass(frozen=True)
class _Load:
    """The messages of one consumer's turn."""

    data: Readings  # every reading of the run, to provision devices and enrollments
    messages: dict[str, list[bytes]]  # per gateway, replays included
    readings: int  # distinct readings among them
    replayed: int
    per_message: int


def _messages(
    data: Readings, per_message: int, replay_every: int, readings: int
) -> tuple[dict[str, list[bytes]], int, int]:
    """Per gateway, the first ``readings`` (all: 0) readings as messages, the first and
    then every ``replay_every``-th of them published twice in a row; the distinct readings
    they carry and the count of replays."""
    out: dict[str, list[bytes]] = {}
    distinct = replayed = 0
    per_gateway = readings // len(data) if readings else 0
    for gw, rows in data.items():
        rows = rows[:per_gateway] if per_gateway else rows
        payloads = []
        for k, i in enumerate(range(0, len(rows), per_message)):
            payload = encode_batch(gw, 0, rows[i : i + per_message])
            payloads.append(payload)
            if replay_every and k % replay_every == 0:
                payloads.append(payload)
                replayed += 1
        distinct += len(rows)
        out[gw] = payloads
    return out, distinct, replayed


def run(
    consumers: Sequence[Consumer],
    total_readings: int = FULL["readings"],
    per_message: int = 1000,
    gateways: int = 4,
    timescaledb: bool = False,
    replay_every: int = REPLAY_EVERY,
    rounds: int = 1,
) -> list[Result]:
    """Each consumer in turn, ``rounds`` times over, one broker and one PostgreSQL server
    for all of them; per consumer, its fastest round (other work on a shared machine only
    ever slows a round down), or its first inexact one should any have lost a reading."""
    flavour = "timescaledb" if timescaledb else "postgres"
    with private_services("postop-bench-", timescaledb=timescaledb) as (tmp, pg, broker, procs):
        data = _readings(gateways, total_readings // gateways)
        ref_db = pg.create_database("reference")
        migrate(ref_db)
        patients = _provision(ref_db, data)
        copies = [_copy_reference(ref_db, data, patients) for _ in range(COPY_RUNS)]
        copy_rate = statistics.median(copies)
        print(
            f"  COPY ({flavour}): {copy_rate:,.0f} rows/s, median of"
            f" {', '.join(f'{c:,.0f}' for c in copies)}",
            flush=True,
        )
        _drop(pg, "reference")

        ingest_hash, gw_hash = hash_password(INGEST_PASSWORD), hash_password("bench-gw")
        broker.write_config(
            [
                *(ingest_account(f"ingest-{w}", ingest_hash) for w in (1, 2, 3, 4)),
                monitor_account(),
                node_red_peer.peer_account(),
                *(gateway_account(gw, gw_hash) for gw in data),
            ]
        )
        broker.start()
        assert broker.proc is not None
        rounds_of: dict[Consumer, list[Result]] = {c: [] for c in consumers}
        with CounterWatch(broker.port) as dropped:
            services = _Services(tmp, pg, broker, procs, dropped)
            turns = [(r, c) for r in range(rounds) for c in consumers]
            for i, (r, c) in enumerate(turns):
                messages, distinct, replayed = _messages(
                    data, per_message, replay_every if c.replay else 0, c.readings
                )
                load = _Load(data, messages, distinct, replayed, per_message)
                if rounds > 1 and c is consumers[0]:
                    print(f"  round {r + 1} of {rounds}", flush=True)
                result = _measure(services, c, f"pipeline{i}", load, flavour, copy_rate)
                rounds_of[c].append(result)
                print(
                    f"  {c.label} ({flavour}): {result.rows_per_s:,.0f} rows/s"
                    f" ({result.ratio_to_copy:.2f} of COPY), rows {result.rows_stored:,}"
                    f" of {result.readings:,}, CPU s: consumer {result.consumer_cpu_s:.1f},"
                    f" broker {result.cpu_s['mosquitto']:.1f},"
                    f" postgres {result.cpu_s['postgres']:.1f};"
                    f" dropped {result.broker_dropped_delta}",
                    flush=True,
                )
        return [_pick(rs) for rs in rounds_of.values()]


def _pick(rounds: list[Result]) -> Result:
    """The round a consumer is reported by, with every round's rate."""
    wrong = [r for r in rounds if not r.exact]
    chosen = wrong[0] if wrong else max(rounds, key=lambda r: r.rows_per_s)
    return replace(chosen, round_rates=[round(r.rows_per_s) for r in rounds])


def _measure(
    s: _Services, c: Consumer, name: str, load: _Load, flavour: str, copy_rate: float
) -> Result:
    """One consumer drains ``load`` into a fresh database ``name``."""
    db = s.pg.create_database(name)
    migrate(db)
    _provision(db, load.data)
    # errors only: ingest's warning at each stop of a worker is expected here
    env = {**service_env(db, s.broker.port), "POSTOP_LOG_LEVEL": "ERROR"}
    user_dir = s.tmp / f"node-red-{name}"
    node_red = c.kind in node_red_peer.FLOWS
    topic, login = (
        (PEER_TOPIC, (PEER_USER, PEER_USER)) if node_red else (INGEST_TOPIC, ("", INGEST_PASSWORD))
    )

    def start() -> None:
        if node_red:
            s.procs.append(node_red_peer.start(user_dir, s.broker.port, db, c.kind))
        else:
            s.procs.extend(_ingest(env, s.tmp, cid) for cid in c.client_ids)

    def problems() -> str:
        return "\n".join(node_red_peer.errors(user_dir)[:5])

    # a first short run creates the persistent sessions (the shared group for ingest),
    # which must keep their subscription once the consumer is gone
    offset = (s.broker.root / "mosquitto.log").stat().st_size
    start()
    _wait_subscribed(s.broker, c.client_ids, topic, offset)
    stop_all(s.procs)
    time.sleep(0.5)
    log = _log_since(s.broker, offset)
    gone = [cid for cid in c.client_ids if _subscription(log, cid, topic) is False]
    if gone:
        raise RuntimeError(
            f"{', '.join(gone)} unsubscribed from {topic} on stopping: the broker would queue"
            " nothing for it, and the bench would wait for rows that never come"
        )
    dropped0 = s.dropped.value()
    _publish(s.broker.port, load.messages)
    messages = sum(len(p) for p in load.messages.values())
    print(
        f"  {c.label}: {load.readings:,} readings in {messages} messages"
        f" ({load.replayed} replayed) queued, draining",
        flush=True,
    )
    broker_pid = s.broker.proc.pid if s.broker.proc else 0
    broker_cpu0, pg_cpu0 = _cpu_seconds(broker_pid), _postgres_cpu(s.pg)
    with _connect(db) as conn:
        t0 = time.perf_counter()
        start()
        rate, t_end = _drain(c, conn, load.readings, s.procs, problems, t0)
        names = ["node-red"] if node_red else c.client_ids
        cpu = {n: _cpu_seconds(p.pid) for n, p in zip(names, s.procs, strict=True)}
        cpu["mosquitto"] = _cpu_seconds(broker_pid) - broker_cpu0
        cpu["postgres"] = _postgres_cpu(s.pg) - pg_cpu0
        stop_all(s.procs)
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (device_id, metric_id, time)) FROM vitals"
        ).fetchone()
        stored, distinct = (int(row[0]), int(row[1])) if row else (0, 0)
    dropped = s.dropped.value() - dropped0
    for client_id in c.client_ids:
        # an ingest worker's account is named like its client id
        _forget_session(s.broker.port, client_id, login[0] or client_id, login[1])
    _drop(s.pg, name)
    return Result(
        consumer=c.kind,
        label=c.label,
        workers=c.workers,
        flavour=flavour,
        readings=load.readings,
        messages=messages,
        replayed_messages=load.replayed,
        replay=c.replay,
        readings_per_message=load.per_message,
        gateways=len(load.messages),
        rows_stored=stored,
        distinct_keys=distinct,
        copy_rows_per_s=copy_rate,
        rows_per_s=rate,
        ratio_to_copy=rate / copy_rate,
        drain_s=t_end - t0,
        cpu_s={k: round(v, 2) for k, v in cpu.items()},
        broker_dropped_delta=dropped,
    )


def _drop(pg: LocalPostgres, name: str) -> None:
    """A measured database goes once done, so that the next consumer's pages are the
    only ones competing for the server's cache."""
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _timescaledb_version(binaries: PgBinaries) -> str:
    """The extension's default version as installed for this server, or ``absent``."""
    if not timescaledb_installed(binaries):
        return "absent"
    try:
        share = subprocess.run(
            [binaries.tool("pg_config"), "--sharedir"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        control = (Path(share) / "extension" / "timescaledb.control").read_text()
    except (OSError, subprocess.SubprocessError):
        return "installed"
    found = re.search(r"default_version\s*=\s*'([^']+)'", control)
    return found.group(1) if found else "installed"


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
    binaries = find_binaries()
    # "postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
    pg_out = subprocess.run(
        [binaries.tool("postgres"), "--version"], capture_output=True, text=True, timeout=30
    ).stdout
    pg_version = re.search(r"\(PostgreSQL\)\s+(\S+)", pg_out)
    mosquitto = subprocess.run([find_mosquitto(), "-h"], capture_output=True, text=True, timeout=30)
    mosquitto_version = re.search(r"version\s+(\S+)", mosquitto.stdout or mosquitto.stderr)
    versions = {
        "python": platform.python_version(),
        "postgres": pg_version.group(1) if pg_version else pg_out.strip(),
        "timescaledb": _timescaledb_version(binaries),
        "mosquitto": mosquitto_version.group(1) if mosquitto_version else "unknown",
        "psycopg": psycopg.__version__,
        **node_red_peer.versions(),  # what is missing (Node.js, the peer) is left out
    }
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_model": model,
            "platform": platform.platform(),
            "os": pretty,
        },
        "versions": versions,
    }


NODE_RED_FLOWS = ("node-red", "node-red-sql", "node-red-per-reading")


def suite(
    readings: int = FULL["readings"],
    node_red_readings: int = FULL["node_red_readings"],
    scaling: bool = True,
    node_red: bool = True,
    per_message: int = 1000,
    replay_every: int = REPLAY_EVERY,
    rounds: int = 1,
) -> list[Result]:
    """Ingest with one worker (and again without the replays, to show what they cost),
    then (``scaling``) two on the shared subscription, then (``node_red``) the Node-RED
    flows: the batch flows on the same load, the per-reading one on the first messages (it
    is far slower; the rate needs no more). With the timescaledb extension installed,
    ingest and COPY again on a hypertable."""
    consumers = [Consumer("ingest", 1)]
    if replay_every:
        consumers.append(Consumer("ingest", 1, replay=False))
    if scaling:
        consumers.append(Consumer("ingest", 2))
    if node_red:
        consumers += [
            Consumer("node-red"),
            Consumer("node-red-sql"),
            Consumer("node-red-per-reading", 1, node_red_readings),
        ]
    same_load = partial(
        run,
        total_readings=readings,
        per_message=per_message,
        replay_every=replay_every,
        rounds=rounds,
    )
    results = same_load(consumers)
    if timescaledb_installed(find_binaries()):
        results += same_load(consumers[: 1 + bool(replay_every)], timescaledb=True)
    else:
        print("  hypertable: absent (no timescaledb extension for this PostgreSQL)", flush=True)
    return results


def table(results: Sequence[Result]) -> str:
    lines = [
        f"{'consumer':<19} {'flavour':<11} {'readings':>9} {'stored':>9} {'rows/s':>9}"
        f" {'of COPY':>7} {'CPU s: consumer':>15} {'broker':>6} {'postgres':>8} {'dropped':>7}"
    ]
    for r in results:
        lines.append(
            f"{r.label:<19} {r.flavour:<11} {r.readings:>9,} {r.rows_stored:>9,}"
            f" {r.rows_per_s:>9,.0f} {r.ratio_to_copy:>7.2f} {r.consumer_cpu_s:>15.1f}"
            f" {r.cpu_s['mosquitto']:>6.1f} {r.cpu_s['postgres']:>8.1f}"
            f" {r.broker_dropped_delta:>7}"
        )
    for flavour in dict.fromkeys(r.flavour for r in results):
        copy = next(r.copy_rows_per_s for r in results if r.flavour == flavour)
        lines.append(f"COPY reference ({flavour}): {copy:,.0f} rows/s")
    return "\n".join(lines)


def ratios(results: Sequence[Result]) -> dict[str, float]:
    """The figures the targets are about, from one run's results."""
    by = {(r.consumer, r.workers, r.replay, r.flavour): r for r in results}
    out: dict[str, float] = {}
    one = by.get(("ingest", 1, True, "postgres"))
    if one is None:
        return out
    out["ingest_to_copy"] = one.ratio_to_copy
    plain = by.get(("ingest", 1, False, "postgres"))
    if plain:
        out["ingest_no_replay_to_copy"] = plain.ratio_to_copy
    two = by.get(("ingest", 2, True, "postgres"))
    if two:
        out["two_workers_scaling"] = two.rows_per_s / one.rows_per_s
    for kind in NODE_RED_FLOWS:
        peer = by.get((kind, 1, True, "postgres"))
        if peer:
            out[f"ingest_to_{kind.replace('-', '_')}"] = one.rows_per_s / peer.rows_per_s
    hyper = by.get(("ingest", 1, True, "timescaledb"))
    if hyper:
        out["hypertable_ingest_to_copy"] = hyper.ratio_to_copy
    return out


class LostReadings(RuntimeError):
    """A consumer stored fewer or more rows than readings published, or the broker
    dropped messages: the run's figures are not to be trusted."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_throughput", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--readings", type=int, help=f"default {FULL['readings']:,}")
    parser.add_argument("--node-red-readings", type=int, help="for the per-reading flow")
    parser.add_argument("--no-node-red", action="store_true")
    parser.add_argument("--no-scaling", action="store_true", help="no run with two workers")
    parser.add_argument(
        "--replay-every", type=int, default=REPLAY_EVERY, help="0: publish no message twice"
    )
    parser.add_argument("--rounds", type=int, help="each consumer this many times (fastest kept)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON results file")
    return parser


def main(argv: Sequence[str] | None = None, check: bool = True) -> dict[str, Any]:
    """Run the suite, print its table, write its JSON; returns the JSON document. With
    ``check``, then raise ``LostReadings`` if any consumer lost or duplicated readings or
    the broker dropped messages."""
    args = _parser().parse_args(argv)
    sizes = QUICK if args.quick else FULL
    results = suite(
        args.readings or sizes["readings"],
        args.node_red_readings or sizes["node_red_readings"],
        scaling=not args.no_scaling,
        node_red=not args.no_node_red,
        replay_every=args.replay_every,
        rounds=args.rounds or sizes["rounds"],
    )
    print(table(results))
    doc = {
        "benchmark": "ingest_throughput",
        "at": datetime.now(UTC).isoformat(),
        "quick": args.quick,
        **environment(),
        "hypertable": "run" if any(r.flavour == "timescaledb" for r in results) else "absent",
        "ratios": ratios(results),
        "results": [{**asdict(r), "exact": r.exact} for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print(f"written to {args.out}")
    wrong = [r.label for r in results if not r.exact]
    if check and wrong:
        raise LostReadings(
            f"{', '.join(wrong)}: rows stored differ from readings published, or the broker"
            " dropped messages (see the table)"
        )
    return doc


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as exc:  # lost readings, a consumer stuck, a peer missing
        raise SystemExit(f"ingest benchmark failed: {exc}") from None
