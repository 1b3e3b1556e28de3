"""Retention and purge of patients' records, on both database flavours.

French rules keep a medical record for 20 years from the last stay or consultation
(Code de la santé publique R1112-7); after that, postop deletes the patient everywhere.
"Last care" is the latest of: the record's creation, discharge, end of follow-up, end of
an enrolment, a reading, an alert's activity, a clinician's note. A patient with an
enrolment still open is never purged.

Deletion is generic, so that tables added later are covered without touching this file:
every base table of the schema with a ``patient_id`` column (information_schema), plus
every table whose foreign key reaches a row being deleted (alert events, push
deliveries...), children first. Aggregates follow: on plain PostgreSQL the materialized
views holding a ``patient_id`` are refreshed; with TimescaleDB the continuous
aggregates' materialization hypertables are deleted from in the same transaction (a
refresh would recompute nothing older than its window, and would wipe other patients'
buckets whose raw rows the retention policy has already dropped). One transaction per
patient: a crash leaves a patient whole or gone, and the next run finishes the rest.

Audit rows keep who read what for the record's whole life, but the client address in
them (``detail.address``) is cleared after its own, shorter period, and the sign-in
throttle's counters (keyed by address) go too. Each run writes counts to ``purge_runs``,
never an identity."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from store.aggregates import refresh_aggregates
from store.flavour import Flavour, detect

log = logging.getLogger(__name__)

_LOCK_KEY = 0x7075726765  # "purge": one run at a time across every process
ADDRESS_KEYS = ("address", "ip", "client_address")

# patients whose last care is older than the cutoff; each NOT EXISTS is an index probe
# (and on TimescaleDB the vitals one excludes every chunk older than the cutoff)
_LAST_CARE = """
SELECT p.patient_id FROM patients p
WHERE greatest(p.created_at, p.discharged_at, p.follow_up_ended_at) < %(cutoff)s
  AND NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.patient_id = p.patient_id
                  AND (upper_inf(e.valid) OR upper(e.valid) >= %(cutoff)s))
  AND NOT EXISTS (SELECT 1 FROM vitals v WHERE v.patient_id = p.patient_id
                  AND v.time >= %(cutoff)s)
  AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.patient_id = p.patient_id
                  AND greatest(a.opened_at, a.updated_at, a.resolved_at) >= %(cutoff)s)
  AND NOT EXISTS (SELECT 1 FROM clinician_notes n WHERE n.patient_id = p.patient_id
                  AND n.at >= %(cutoff)s)
ORDER BY p.patient_id
"""


@dataclass(frozen=True, slots=True)
class RetentionRules:
    record_years: int = 20
    address_days: int = 365


@dataclass(slots=True)
class PurgeReport:
    patients_purged: int = 0
    rows_deleted: Counter[str] = field(default_factory=Counter)
    addresses_cleared: int = 0


def patient_tables(conn: psycopg.Connection) -> list[str]:
    """Every base table of the current schema with a ``patient_id`` column."""
    rows = conn.execute(
        "SELECT c.table_name FROM information_schema.columns c"
        " JOIN information_schema.tables t USING (table_schema, table_name)"
        " WHERE c.table_schema = current_schema() AND c.column_name = 'patient_id'"
        " AND t.table_type = 'BASE TABLE' ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows]


def patient_matviews(conn: psycopg.Connection) -> list[str]:
    """Materialized views of the current schema with a ``patient_id`` column (plain
    PostgreSQL's stand-ins for continuous aggregates; information_schema omits them)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
        " WHERE c.relkind = 'm' AND c.relnamespace = current_schema()::regnamespace"
        " AND a.attname = 'patient_id' AND NOT a.attisdropped ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows]


@dataclass(frozen=True, slots=True)
class _ForeignKey:
    child: str
    child_cols: tuple[str, ...]
    parent: str
    parent_cols: tuple[str, ...]


def _foreign_keys(conn: psycopg.Connection) -> list[_ForeignKey]:
    rows = conn.execute(
        "SELECT ch.relname, pa.relname,"
        " array(SELECT attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i)"
        "   JOIN pg_attribute ON attrelid = k.conrelid AND attnum = u.n ORDER BY u.i),"
        " array(SELECT attname FROM unnest(k.confkey) WITH ORDINALITY u(n, i)"
        "   JOIN pg_attribute ON attrelid = k.confrelid AND attnum = u.n ORDER BY u.i)"
        " FROM pg_constraint k JOIN pg_class ch ON ch.oid = k.conrelid"
        " JOIN pg_class pa ON pa.oid = k.confrelid"
        " WHERE k.contype = 'f' AND ch.relnamespace = current_schema()::regnamespace"
        " AND pa.relnamespace = current_schema()::regnamespace"
    ).fetchall()
    return [_ForeignKey(r[0], tuple(r[2]), r[1], tuple(r[3])) for r in rows]


@dataclass(frozen=True, slots=True)
class DeletionPlan:
    """For each table, which rows belong to the purged patients, and the order in which
    to delete (children before the rows they reference)."""

    conditions: dict[str, sql.Composable]
    order: list[str]


def deletion_plan(conn: psycopg.Connection) -> DeletionPlan:
    """Rows to delete: ``patient_id = ANY(%(ids)s)`` in every patient table, then in any
    table referencing rows to delete, recursively."""
    fks = _foreign_keys(conn)
    conds: dict[str, list[sql.Composable]] = {
        t: [sql.SQL("patient_id = ANY(%(ids)s)")] for t in patient_tables(conn)
    }
    reached: set[tuple[str, str, tuple[str, ...]]] = set()
    changed = True
    while changed:  # a fixpoint: the schema's depth, a handful of rounds
        changed = False
        for fk in fks:
            key = (fk.child, fk.parent, fk.child_cols)
            if fk.parent not in conds or key in reached or fk.child == fk.parent:
                continue
            reached.add(key)
            parent_where = sql.SQL(" OR ").join(conds[fk.parent])
            conds.setdefault(fk.child, []).append(
                sql.SQL("({}) IN (SELECT {} FROM {} WHERE {})").format(
                    sql.SQL(", ").join(map(sql.Identifier, fk.child_cols)),
                    sql.SQL(", ").join(map(sql.Identifier, fk.parent_cols)),
                    sql.Identifier(fk.parent),
                    parent_where,
                )
            )
            changed = True
    tables = sorted(conds)
    edges = {
        t: {fk.parent for fk in fks if fk.child == t and fk.parent in conds and fk.parent != t}
        for t in tables
    }
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(t: str) -> None:  # children (tables that reference t) go first
        if state.get(t) == 2:
            return
        if state.get(t) == 1:
            raise RuntimeError(f"foreign keys form a cycle through {t}: cannot order a purge")
        state[t] = 1
        for child in tables:
            if t in edges[child]:
                visit(child)
        state[t] = 2
        order.append(t)

    for t in tables:
        visit(t)
    return DeletionPlan(
        {t: sql.SQL("({})").format(sql.SQL(" OR ").join(c)) for t, c in conds.items()}, order
    )


def _continuous_aggregates(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """(view, materialization schema, materialization table) of each TimescaleDB
    continuous aggregate of this schema that holds a patient_id."""
    rows = conn.execute(
        "SELECT ca.view_name, ca.materialization_hypertable_schema,"
        " ca.materialization_hypertable_name"
        " FROM timescaledb_information.continuous_aggregates ca"
        " WHERE ca.view_schema = current_schema() AND EXISTS ("
        "   SELECT 1 FROM information_schema.columns c WHERE c.table_schema = ca.view_schema"
        "   AND c.table_name = ca.view_name AND c.column_name = 'patient_id')"
    ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def _purge_continuous_aggregates(
    conn: psycopg.Connection, ids: list[int], report: PurgeReport
) -> None:
    for view, schema, table in _continuous_aggregates(conn):
        has = conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = %s"
            " AND table_name = %s AND column_name = 'patient_id'",
            (schema, table),
        ).fetchone()
        if has is None:  # never claim a purge that did not happen
            raise RuntimeError(f"continuous aggregate {view}: no patient_id in {schema}.{table}")
        cur = conn.execute(
            sql.SQL("DELETE FROM {}.{} WHERE patient_id = ANY(%(ids)s)").format(
                sql.Identifier(schema), sql.Identifier(table)
            ),
            {"ids": ids},
        )
        report.rows_deleted[view] += max(cur.rowcount, 0)


def _scrub_id_lists(conn: psycopg.Connection, patient_id: int) -> int:
    """Audit rows of a whole page (a dashboard read) list the patients shown: take the
    purged id out of those lists."""
    cur = conn.execute(
        "UPDATE audit_log SET detail = jsonb_set(detail, '{patients}', coalesce((SELECT"
        " jsonb_agg(e) FROM jsonb_array_elements(detail -> 'patients') e"
        " WHERE e <> to_jsonb(%(id)s::bigint)), '[]'::jsonb))"
        " WHERE jsonb_typeof(detail -> 'patients') = 'array'"
        " AND detail -> 'patients' @> jsonb_build_array(%(id)s::bigint)",
        {"id": patient_id},
    )
    return max(cur.rowcount, 0)


def _delete_conflicts(conn: psycopg.Connection, patient_id: int) -> int:
    """Ingest's conflicting re-deliveries name a device and a time, not a patient: those
    inside the patient's enrolments are theirs (read before the enrolments go)."""
    cur = conn.execute(
        "DELETE FROM reading_conflicts r USING enrollments e WHERE e.patient_id = %s"
        " AND r.device_id = e.device_id AND e.valid @> r.time",
        (patient_id,),
    )
    return max(cur.rowcount, 0)


def purge_patient(conn: psycopg.Connection, plan: DeletionPlan, patient_id: int) -> Counter[str]:
    """Delete one patient everywhere; the caller holds the transaction."""
    counts: Counter[str] = Counter()
    if conn.execute("SELECT to_regclass('reading_conflicts')").fetchone() != (None,):
        counts["reading_conflicts"] += _delete_conflicts(conn, patient_id)
    params = {"ids": [patient_id]}
    for table in plan.order:
        cur = conn.execute(
            sql.SQL("DELETE FROM {} WHERE {}").format(
                sql.Identifier(table), plan.conditions[table]
            ),
            params,
        )
        counts[table] += max(cur.rowcount, 0)
    counts["audit_log (lists)"] += _scrub_id_lists(conn, patient_id)
    return +counts


def clear_addresses(conn: psycopg.Connection, now: datetime, days: int) -> int:
    """Client addresses out of audit rows older than ``days``; the rows stay."""
    cutoff = now - timedelta(days=days)
    cur = conn.execute(
        "UPDATE audit_log SET detail = detail - %(keys)s::text[]"
        " WHERE at < %(cutoff)s AND detail ?| %(keys)s::text[]",
        {"keys": list(ADDRESS_KEYS), "cutoff": cutoff},
    )
    cleared = max(cur.rowcount, 0)
    cur = conn.execute("DELETE FROM login_attempts WHERE last_at < %s", (cutoff,))
    return cleared + max(cur.rowcount, 0)


def _stale_matviews(conn: psycopg.Connection) -> list[str]:
    """Stand-in views still holding a patient the tables no longer have (a purge whose
    refresh a crash interrupted, or this run's)."""
    stale = []
    for view in patient_matviews(conn):
        populated = conn.execute(
            "SELECT ispopulated FROM pg_matviews WHERE matviewname = %s", (view,)
        ).fetchone()
        if not populated or not populated[0]:
            continue
        row = conn.execute(
            sql.SQL(
                "SELECT 1 FROM {} v WHERE NOT EXISTS (SELECT 1 FROM patients p"
                " WHERE p.patient_id = v.patient_id) LIMIT 1"
            ).format(sql.Identifier(view))
        ).fetchone()
        if row is not None:
            stale.append(view)
    return stale


def purge(conn: psycopg.Connection, now: datetime, rules: RetentionRules) -> PurgeReport:
    """One retention run at ``now`` (the clock is injected for tests). ``conn`` must be in
    autocommit mode: each patient is its own transaction, and a materialized view is
    refreshed outside them. Another run in progress elsewhere: returns an empty report."""
    report = PurgeReport()
    got = conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,)).fetchone()
    if not got or not got[0]:
        log.info("retention: another run is in progress")
        return report
    try:
        flavour = detect(conn)
        row = conn.execute(
            "INSERT INTO purge_runs (clock_at, record_years, address_days)"
            " VALUES (%s, %s, %s) RETURNING run_id",
            (now, rules.record_years, rules.address_days),
        ).fetchone()
        assert row is not None
        run_id = int(row[0])
        row = conn.execute(
            "SELECT %s::timestamptz - make_interval(years => %s)", (now, rules.record_years)
        ).fetchone()
        assert row is not None
        expired = [int(r[0]) for r in conn.execute(_LAST_CARE, {"cutoff": row[0]})]
        plan = deletion_plan(conn)
        for patient_id in expired:
            with conn.transaction():
                conn.execute(
                    "SELECT 1 FROM patients WHERE patient_id = %s FOR UPDATE", (patient_id,)
                )
                report.rows_deleted.update(purge_patient(conn, plan, patient_id))
                if flavour is Flavour.TIMESCALEDB:
                    _purge_continuous_aggregates(conn, [patient_id], report)
                report.patients_purged += 1
        with conn.transaction():
            report.addresses_cleared = clear_addresses(conn, now, rules.address_days)
        if flavour is Flavour.POSTGRES:
            stale = _stale_matviews(conn)
            if stale:
                refresh_aggregates(conn)
                for view in set(stale) - {"vitals_1m", "vitals_1h"}:
                    conn.execute(
                        sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.Identifier(view))
                    )
        conn.execute(
            "UPDATE purge_runs SET finished_at = clock_timestamp(), patients_purged = %s,"
            " rows_deleted = %s, addresses_cleared = %s WHERE run_id = %s",
            (
                report.patients_purged,
                Jsonb(dict(report.rows_deleted)),
                report.addresses_cleared,
                run_id,
            ),
        )
        log.info(
            "retention: %d patients purged (%d rows), %d addresses cleared",
            report.patients_purged,
            sum(report.rows_deleted.values()),
            report.addresses_cleared,
        )
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return report


def due(conn: psycopg.Connection, now: datetime, every: timedelta) -> bool:
    """Whether the last finished run is older than ``every`` (restarts do not re-run),
    by the runs' own clock."""
    row = conn.execute(
        "SELECT max(clock_at) FROM purge_runs WHERE finished_at IS NOT NULL"
    ).fetchone()
    return row is None or row[0] is None or row[0] <= now - every


def run_daily(
    conninfo: str,
    rules: RetentionRules,
    stop: threading.Event,
    every: timedelta = timedelta(days=1),
    check_s: float = 600.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """The long-running service: a run whenever the last one is ``every`` old, checked
    every ``check_s``; a database that is down is retried at the next check."""
    while not stop.is_set():
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                if due(conn, clock(), every):
                    purge(conn, clock(), rules)
        except psycopg.Error as exc:
            log.warning("retention: run failed, retried in %.0f s: %s", check_s, exc)
        stop.wait(check_s)
