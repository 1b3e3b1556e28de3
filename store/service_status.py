"""What each service instance knows of its MQTT broker, kept in ``service_status``: a
broker that dies sends no last will, so ingest and the alerts engine say it themselves,
in their log (one clear line, then one a minute) and in this table, which the API's
``/metrics`` exposes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BrokerState:
    service: str
    instance: str
    reachable: bool
    down_since: datetime | None
    updated_at: datetime


def record(
    conn: psycopg.Connection, service: str, instance: str, reachable: bool, down_since: float | None
) -> None:
    conn.execute(
        "INSERT INTO service_status (service, instance, broker_reachable, broker_down_since,"
        " updated_at) VALUES (%s, %s, %s, to_timestamp(%s), now())"
        " ON CONFLICT (service, instance) DO UPDATE SET"
        " broker_reachable = EXCLUDED.broker_reachable,"
        " broker_down_since = EXCLUDED.broker_down_since, updated_at = now()",
        (service, instance, reachable, down_since),
    )


def broker_states(conn: psycopg.Connection) -> list[BrokerState]:
    rows = conn.execute(
        "SELECT service, instance, broker_reachable, broker_down_since, updated_at"
        " FROM service_status ORDER BY 1, 2"
    ).fetchall()
    return [BrokerState(*row) for row in rows]


class BrokerMonitor:
    """Asks ``reachable()`` every ``every_s``; after ``log_after_s`` of trouble logs an
    error line (then one a minute) and records the state on every change and each minute."""

    def __init__(
        self,
        conninfo: str,
        service: str,
        instance: str,
        where: str,
        reachable: Callable[[], bool],
        log_after_s: float = 60.0,
        every_s: float = 5.0,
    ) -> None:
        self._conninfo = conninfo
        self._service, self._instance, self._where = service, instance, where
        self._reachable = reachable
        self._log_after_s = log_after_s
        self._every_s = every_s
        self.down_since: float | None = None  # wall clock, for the table

    def run(self, stop: threading.Event) -> None:
        last_log = 0.0  # when the last "unreachable" line was written (0: none since up)
        last_record = 0.0
        previous: bool | None = None
        while not stop.wait(0 if previous is None else self._every_s):
            ok = self._reachable()
            now = time.time()
            if ok:
                if self.down_since is not None:
                    log.warning(
                        "MQTT broker %s reachable again after %.0f s",
                        self._where,
                        now - self.down_since,
                    )
                self.down_since = None
            else:
                self.down_since = self.down_since or now
                down_s = now - self.down_since
                if down_s >= self._log_after_s and now - last_log >= 60:
                    log.error(
                        "MQTT broker %s unreachable for %.0f s: no reading can arrive"
                        " (the broker may be down; the database side keeps running)",
                        self._where,
                        down_s,
                    )
                    last_log = now
            if ok != previous or now - last_record >= 60:
                try:
                    with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as c:
                        record(c, self._service, self._instance, ok, self.down_since)
                    last_record = now
                except psycopg.Error as exc:
                    log.warning("could not record the broker state (%s)", type(exc).__name__)
            previous = ok

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="broker-monitor", daemon=True)
        thread.start()
        return thread
