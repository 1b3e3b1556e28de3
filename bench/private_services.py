"""The private PostgreSQL and Mosquitto every benchmark runs against, in a temporary
folder removed afterwards, and the environment of the service processes it starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.broker_counters import MONITOR_ACL, SYS_CONF
from bench.node_red_peer import PEER_ACL
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
    broker = LocalMosquitto(
        tmp / "mqtt", free_port(), extra_acl=MONITOR_ACL + PEER_ACL, extra_conf=SYS_CONF
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        pg.ensure_initialised()
        pg.start()
        pg.wait_ready()
        yield tmp, pg, broker, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        broker.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def service_env(db: str, broker_port: int) -> dict[str, str]:
    """Environment for ingest and alerts processes (ingest's broker account)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTOP_")}
    env.update(
        {
            "POSTOP_DATABASE_URL": db,
            "POSTOP_MQTT__PORT": str(broker_port),
            "POSTOP_MQTT__USERNAME": "ingest",
            "POSTOP_MQTT__PASSWORD": INGEST_PASSWORD,
            "POSTOP_INGEST__REFRESH_AGGREGATES_S": "3600",
            "POSTOP_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env
