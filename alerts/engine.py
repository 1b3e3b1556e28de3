"""The alerts engine loop: evaluate on ingest's NOTIFY (only the patients that got new
data, debounced) and on a periodic tick (every followed patient: missing data, gateways
offline, escalation and auto-resolve timing). Reads only committed data; one database
transaction applies each round's transitions; notifications go out after the commit and
never hold up the next evaluation.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

import psycopg

from alerts.alert_store import Notice, any_late, apply, claim_late, open_alerts, open_late
from alerts.context import followed_patients
from alerts.evaluate import evaluate
from alerts.late import late_episodes
from alerts.lifecycle import Policy, plan
from alerts.news2_rule import News2Score
from alerts.protocol import Protocol
from alerts.published import publish_protocols
from alerts.source import SqlSource
from alerts.stale_data import SystemNotice, check_stale_data

log = logging.getLogger(__name__)

VITALS_CHANNEL = "vitals_ingested"
# what runs after each round, with the round's patients (None: everyone) and its time:
# the requests to patients' phones (remeasure.py, battery_requests.py)
AfterRound = Callable[[psycopg.Connection, list[int] | None, int], object]
STATUS_CHANNEL = "gateway_status"


class Engine:
    def __init__(
        self,
        conninfo: str,
        protocols: dict[str, Protocol],
        notify: Callable[[psycopg.Connection, Sequence[Notice]], None],
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        stale_after_s: float | None = None,
        notify_system: Callable[[psycopg.Connection, Sequence[SystemNotice]], None] | None = None,
        after_round: AfterRound | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._protocols = protocols
        self._notify = notify
        self._clock_ms = clock_ms
        self._stale_after_s = stale_after_s
        self._notify_system = notify_system
        self._after_round = after_round
        self._started_ms = clock_ms()
        self.rounds = 0

    def evaluate_once(self, conn: psycopg.Connection, patient_ids: Iterable[int] | None) -> int:
        """One round for these patients (None: every followed patient); returns how many
        transitions it applied."""
        now_ms = self._clock_ms()
        ids = None if patient_ids is None else sorted(set(patient_ids))
        if ids is None and self._stale_after_s is not None:
            system = check_stale_data(conn, now_ms, self._stale_after_s, self._started_ms)
            if system and self._notify_system is not None:
                self._notify_system(conn, system)
        ctx = followed_patients(conn, ids)
        if len(ctx.patient_ids) == 0:
            return self._examine_late(conn, now_ms)
        scores: list[News2Score] = []
        findings = evaluate(SqlSource(conn), ctx, self._protocols, now_ms, scores)
        policies = {}
        for pid, proto_name in zip(ctx.patient_ids.tolist(), ctx.protocols, strict=True):
            proto = self._protocols.get(proto_name)
            if proto is None:
                continue
            policies[pid] = Policy.of(proto)
        current = open_alerts(conn, ctx.patient_ids.tolist())
        actions = plan(
            [f for f in findings if f.patient_id in policies],
            [a for a in current if a.patient_id in policies],
            now_ms,
            policies,
        )
        notices = apply(conn, actions, now_ms) if actions else []
        _store_scores(conn, scores, now_ms)
        self.rounds += 1
        if notices:
            self._notify(conn, notices)
        if self._after_round is not None:
            try:
                self._after_round(conn, ids, now_ms)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:  # never holds up the alerts themselves
                log.warning("after the round: %s", type(exc).__name__)
        return len(actions) + self._examine_late(conn, now_ms)

    def _examine_late(self, conn: psycopg.Connection, now_ms: int) -> int:
        """Alerts for episodes that ended before their readings arrived; the marks are
        taken in the transaction that opens the alerts (a crash leaves them for the next
        round). Returns how many alerts it opened."""
        if not any_late(conn):
            return 0
        with conn.transaction(), conn.cursor() as cur:
            since = claim_late(cur)  # before loading: sees every committed reading
            ctx = followed_patients(conn, sorted(since))
            episodes = late_episodes(SqlSource(conn), ctx, self._protocols, since, now_ms)
            notices = open_late(cur, episodes, now_ms)
        if notices:
            log.info("%d alert(s) opened for episodes that ended before their data", len(notices))
            self._notify(conn, notices)
        return len(notices)

    def run(self, stop: threading.Event, tick_s: float, debounce_s: float) -> None:
        conn: psycopg.Connection | None = None
        next_tick = 0.0
        while not stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self._conninfo, autocommit=True)
                    conn.execute(f"LISTEN {VITALS_CHANNEL}")
                    conn.execute(f"LISTEN {STATUS_CHANNEL}")
                    publish_protocols(conn, self._protocols)
                    next_tick = 0.0  # after any outage, look at everyone at once
                if time.monotonic() >= next_tick:
                    self.evaluate_once(conn, None)
                    next_tick = time.monotonic() + tick_s
                patients = self._wait_for_patients(conn, min(1.0, tick_s), debounce_s)
                if patients:
                    self.evaluate_once(conn, patients)
            except psycopg.OperationalError as exc:
                log.warning("database unavailable (%s); retrying", type(exc).__name__)
                if conn is not None:
                    conn.close()
                conn = None
                stop.wait(2.0)
        if conn is not None:
            conn.close()

    @staticmethod
    def _wait_for_patients(
        conn: psycopg.Connection, timeout_s: float, debounce_s: float
    ) -> set[int]:
        """Patients named by notifications in the next ``timeout_s``, gathering a little
        longer after the first so a burst becomes one evaluation."""
        patients: set[int] = set()
        gen = conn.notifies(timeout=timeout_s, stop_after=1)
        first = list(gen)
        if not first:
            return patients
        notes = first + list(conn.notifies(timeout=debounce_s)) if debounce_s else first
        for note in notes:
            if note.channel == VITALS_CHANNEL:
                patients.update(int(p) for p in json.loads(note.payload).get("patients", []))
            elif note.channel == STATUS_CHANNEL:
                patients.update(_patients_of_gateway(conn, note.payload))
        return patients


def _store_scores(conn: psycopg.Connection, scores: Sequence[News2Score], now_ms: int) -> None:
    """The latest NEWS2 per patient, for the dashboard's ordering (one statement a round)."""
    if not scores:
        return
    conn.execute(
        "INSERT INTO patient_news2 (patient_id, score, band, complete, computed_at)"
        " SELECT p, s, b, c, to_timestamp(%s) FROM unnest(%s::bigint[], %s::smallint[],"
        " %s::smallint[], %s::boolean[]) AS u(p, s, b, c)"
        " ON CONFLICT (patient_id) DO UPDATE SET score = EXCLUDED.score, band = EXCLUDED.band,"
        " complete = EXCLUDED.complete, computed_at = EXCLUDED.computed_at",
        (
            f"{now_ms / 1000:.3f}",
            [s.patient_id for s in scores],
            [s.total for s in scores],
            [s.band for s in scores],
            [s.complete for s in scores],
        ),
    )


def _patients_of_gateway(conn: psycopg.Connection, gateway_id: str) -> list[int]:
    rows = conn.execute(
        "SELECT DISTINCT e.patient_id FROM devices d JOIN enrollments e USING (device_id)"
        " WHERE d.gateway_id = %s AND e.valid @> now()",
        (gateway_id,),
    ).fetchall()
    return [int(r[0]) for r in rows]
