"""The private PostgreSQL and Mosquitto every benchmark runs against, in a temporary
folder removed afterwards, and the environment of the service processes it starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.broker_counters import SYS_CONF
from postop.local_mosquitto import LocalMosquitto
from postop.local_postgres import TIMESCALEDB_CONF, LocalPostgres
from postop.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
INGEST_PASSWORD = "bench-ingest"


@contextmanager
def private_services(
    prefix: str, *, timescaledb: bool = False
) -> Iterator[tuple[Path, LocalPostgres, LocalMosquitto, list[subprocess.Popen[bytes]]]]:
    """PostgreSQL started and ready; the broker configured by the caller, then started; the
    list collects service processes, all stopped on the way out."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    tmp.chmod(0o755)
    pg = LocalPostgres(tmp / "pg", free_port(), extra_conf=TIMESCALEDB_CONF if timescaledb else ())
    broker = LocalMosquitto(tmp / "mqtt", free_port(), extra_conf=SYS_CONF)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        pg.ensure_initialised()
        pg.start()
        pg.wait_ready()
        yield tmp, pg, broker, procs
    except BaseException:
        print(f"the logs of the failed run are kept in {_keep_logs(tmp)}", file=sys.stderr)
        raise
    finally:
        stop_all(procs)
        broker.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _keep_logs(tmp: Path) -> Path:
    """The broker's, PostgreSQL's and Node-RED's logs, copied out of a run's folder
    before it goes."""
    kept = Path(tempfile.mkdtemp(prefix="postop-bench-logs-"))
    for log in tmp.rglob("*.log"):
        shutil.copy(log, kept / "-".join(log.relative_to(tmp).parts))
    return kept


def stop_all(procs: list[subprocess.Popen[bytes]], timeout_s: float = 15.0) -> None:
    """Terminate every process, kill what has not exited after ``timeout_s``; empties the
    list. A stuck process must never hold the bench."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    procs.clear()


def service_env(db: str, broker_port: int) -> dict[str, str]:
    """Environment for ingest and alerts processes (ingest's broker account)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTOP_")}
    env.update(
        {
            "POSTOP_DATABASE_URL": db,
            "POSTOP_MQTT__PORT": str(broker_port),
            "POSTOP_MQTT__USERNAME": "ingest-1",  # each worker its own account
            "POSTOP_MQTT__PASSWORD": INGEST_PASSWORD,
            "POSTOP_INGEST__REFRESH_AGGREGATES_S": "3600",
            "POSTOP_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env
