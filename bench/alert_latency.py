"""Alert latency under load: from a gateway's publish of readings showing a desaturation
to the alert's commit, while other homes publish a few thousand normal readings per
second through the same broker, ingest and alerts engine (all real processes)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from bench.private_services import INGEST_PASSWORD, private_services, service_env
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
from vitals.wire import encode_batch

ROOT = Path(__file__).resolve().parent.parent


def _client(gw: str, port: int) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=gw, protocol=mqtt.MQTTv5)
    c.username_pw_set(gw, "bench")
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def main(background_rps: int = 3000, probes: int = 20, homes: int = 10) -> None:
    stop = threading.Event()  # ends the background load, whatever happens
    try:
        with private_services("postop-latency-") as (tmp, pg, broker, procs):
            db = pg.create_database("postop")
            migrate(db)
            start = datetime.now(UTC) - timedelta(days=1)
            gateways = [f"gw-bg-{i}" for i in range(homes)] + [
                f"gw-probe-{i}" for i in range(probes)
            ]
            patients: dict[str, int] = {}
            with psycopg.connect(db, autocommit=True) as conn:
                team = ensure_team(conn, "bench")
                for gw in gateways:
                    pid = ensure_patient(conn, f"P-{gw}", team)
                    conn.execute(
                        "UPDATE patients SET protocol = 'cardiac_surgery' WHERE patient_id = %s",
                        (pid,),
                    )
                    register_gateway(conn, gw)
                    register_device(conn, f"ox-{gw}", "oximeter", gw)
                    enroll(conn, f"ox-{gw}", pid, start)
                    patients[gw] = pid
            gw_hash = hash_password("bench")
            broker.write_config(
                [
                    ingest_account("ingest-1", hash_password(INGEST_PASSWORD)),
                    *(gateway_account(gw, gw_hash) for gw in gateways),
                ]
            )
            broker.start()
            env = service_env(db, broker.port)
            for module in ("ingest.main", "alerts.main"):
                procs.append(subprocess.Popen([sys.executable, "-m", module], env=env, cwd=tmp))
            time.sleep(4)

            def background() -> None:
                clients = [_client(gw, broker.port) for gw in gateways[:homes]]
                per = max(1, background_rps // homes // 4)  # four messages per home per second
                seq = 0
                t_ms = int(time.time() * 1000) - 3_600_000
                while not stop.is_set():
                    tick = time.monotonic()
                    for _ in range(4):
                        for gw, c in zip(gateways[:homes], clients, strict=True):
                            rows = [
                                {
                                    "seq": seq + i,
                                    "device": f"ox-{gw}",
                                    "metric": "spo2_pct",
                                    "time_ms": t_ms + i * 10,
                                    "value": 97.0,
                                    "flags": 0,
                                }
                                for i in range(per)
                            ]
                            c.publish(f"devices/{gw}/readings", encode_batch(gw, t_ms, rows), qos=1)
                        seq += per
                        t_ms += per * 10
                    stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))
                for c in clients:
                    c.disconnect()
                    c.loop_stop()

            bg = threading.Thread(target=background, daemon=True)
            bg.start()
            time.sleep(3)
            sent: dict[int, float] = {}
            for gw in gateways[homes:]:
                c = _client(gw, broker.port)
                now_ms = int(time.time() * 1000)
                rows = [
                    {
                        "seq": i,
                        "device": f"ox-{gw}",
                        "metric": "spo2_pct",
                        "time_ms": now_ms - (12 - i) * 30_000,
                        "value": 85.0,
                        "flags": 0,
                    }
                    for i in range(12)
                ]
                sent[patients[gw]] = time.time()
                c.publish(f"devices/{gw}/readings", encode_batch(gw, now_ms, rows), qos=1)
                time.sleep(1.5)
                c.disconnect()
                c.loop_stop()
            time.sleep(5)
            stop.set()
            with psycopg.connect(db) as conn:
                opened: dict[int, float] = {
                    int(pid): float(at)
                    for pid, at in conn.execute(
                        "SELECT patient_id, extract(epoch FROM min(opened_at)) FROM alerts"
                        " WHERE rule_id = 'spo2_critical' GROUP BY 1"
                    ).fetchall()
                }
                background_rows = conn.execute(
                    "SELECT count(*) FROM vitals WHERE value = 97"
                ).fetchone()
            latencies = sorted(float(opened[p]) - t for p, t in sent.items() if p in opened)
            missed = len(sent) - len(latencies)
            p50 = statistics.median(latencies) if latencies else float("nan")
            p99 = (
                latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
                if latencies
                else float("nan")
            )
            print(
                f"{'probes':>6} {'missed':>6} {'p50 s':>6} {'p99 s':>6} {'max s':>6}"
                f" {'background rows':>16}"
            )
            worst = max(latencies, default=float("nan"))  # every probe missed: none
            print(
                f"{len(sent):>6} {missed:>6} {p50:>6.2f} {p99:>6.2f} {worst:>6.2f}"
                f" {background_rows[0] if background_rows else 0:>16}"
            )
            out = ROOT / "bench" / "results" / "alert_latency.json"
            out.write_text(
                json.dumps(
                    {
                        "benchmark": "alert_latency",
                        "at": datetime.now(UTC).isoformat(),
                        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                        "background_readings_per_s_target": background_rps,
                        "probes": len(sent),
                        "missed": missed,
                        "p50_s": p50,
                        "p99_s": p99,
                        "latencies_s": latencies,
                    },
                    indent=2,
                )
            )
            print(f"written to {out}")
    finally:
        stop.set()


if __name__ == "__main__":
    main()
