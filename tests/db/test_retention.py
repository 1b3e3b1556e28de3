"""Retention and purge with an injected clock (issue 21): a patient whose last care is
older than the retention period is deleted from EVERY table holding a patient_id
(found in information_schema, as the purge finds them, so a table a later migration
adds is checked too), from the tables that reference those rows, and from the trend
aggregates; a patient still within the period and one still enrolled are untouched;
client addresses leave audit rows after their own, shorter period; the run records
counts, never an identity."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from store.access_requests import record_access_request
from store.aggregates import refresh_aggregates
from store.clinicians import create_clinician
from store.consents import record_usual_consents
from store.flavour import Flavour, detect
from store.provisioning import (
    enroll,
    ensure_patient,
    ensure_team,
    register_device,
    register_gateway,
)
from store.questionnaires import record_response
from store.retention import (
    RetentionRules,
    deletion_plan,
    due,
    patient_matviews,
    patient_tables,
    purge,
)
from vitals.catalogue import BY_NAME
from vitals.questionnaire import load_questionnaires

RULES = RetentionRules(record_years=20, address_days=365)


def _now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _sibling_tables(conn: psycopg.Connection) -> None:
    """Tables like those a sibling feature adds later: one with a patient_id, one that
    only references it (answers and their photos)."""
    conn.execute(
        "CREATE TABLE later_reports (answer_id bigint GENERATED ALWAYS AS IDENTITY"
        " PRIMARY KEY, patient_id bigint NOT NULL REFERENCES patients, answered_at"
        " timestamptz NOT NULL, pain smallint)"
    )
    conn.execute(
        "CREATE TABLE later_report_photos (photo_id bigint GENERATED ALWAYS AS IDENTITY"
        " PRIMARY KEY, answer_id bigint NOT NULL REFERENCES later_reports, jpeg bytea NOT NULL)"
    )


def _patient_with_everything(
    conn: psycopg.Connection, key: str, team: int, clinician: int, last_care: datetime
) -> int:
    """A patient with a row in every table that can hold one, all dated up to last_care."""
    pid = ensure_patient(conn, f"RET-{key}", team, "en", "America/New_York")
    start = last_care - timedelta(days=20)
    conn.execute(
        "UPDATE patients SET created_at = %s, discharged_at = %s, follow_up_ended_at = %s,"
        " home_physician_name = 'Dr Home' WHERE patient_id = %s",
        (start - timedelta(days=2), start, last_care, pid),
    )
    gateway = f"gw-ret-{key}"
    register_gateway(conn, gateway, team)
    register_device(conn, f"ox-ret-{key}", "oximeter", gateway)
    record_usual_consents(conn, pid, clinician, "en", ("Dr Home", "US"))
    conn.execute("UPDATE consents SET decided_at = %s WHERE patient_id = %s", (start, pid))
    enroll(conn, f"ox-ret-{key}", pid, start, last_care)
    spo2 = BY_NAME["spo2_pct"].metric_id
    with conn.cursor().copy(
        "COPY vitals (time, patient_id, device_id, metric_id, value, flags) FROM STDIN"
    ) as copy:
        for minutes in range(0, 600, 5):
            copy.write_row((start + timedelta(minutes=minutes), pid, f"ox-ret-{key}", spo2, 95, 0))
    conn.execute(
        "INSERT INTO reading_conflicts (gateway_id, seq, device_id, metric_id, time,"
        " stored_value, stored_flags, value, flags) VALUES (%s, 1, %s, %s, %s, 95, 0, 94, 0)",
        (gateway, f"ox-ret-{key}", spo2, start + timedelta(minutes=5)),
    )
    alert = conn.execute(
        "INSERT INTO alerts (patient_id, rule_id, kind, priority, state, opened_at, evidence,"
        " updated_at, resolved_at) VALUES (%s, 'spo2_low', 'clinical', 'medium', 'resolved',"
        " %s, '{}', %s, %s) RETURNING alert_id",
        (pid, start, start + timedelta(hours=1), start + timedelta(hours=1)),
    ).fetchone()
    assert alert is not None
    conn.execute(
        "INSERT INTO alert_events (alert_id, at, transition, actor) VALUES (%s, %s, 'opened',"
        " 'system')",
        (alert[0], start),
    )
    conn.execute(
        "INSERT INTO push_deliveries (alert_id, at, delivered, attempts) VALUES (%s, %s, true, 1)",
        (alert[0], start),
    )
    conn.execute(
        "INSERT INTO clinician_notes (patient_id, clinician_id, at, body) VALUES (%s, %s, %s,"
        " 'called the patient')",
        (pid, clinician, start),
    )
    conn.execute(
        "INSERT INTO threshold_overrides (patient_id, rule_id, param, value, set_by, set_at,"
        " reason) VALUES (%s, 'spo2_low', 'threshold', 90, 'clinician:1', %s, 'COPD')",
        (pid, start),
    )
    conn.execute(
        "INSERT INTO patient_news2 (patient_id, score, band, complete, computed_at)"
        " VALUES (%s, 1, 0, true, %s)",
        (pid, start),
    )
    conn.execute(
        "INSERT INTO late_readings (patient_id, since) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (pid, start),
    )
    sharing = conn.execute(
        "SELECT consent_id FROM consents WHERE patient_id = %s AND kind = 'sharing'", (pid,)
    ).fetchone()
    assert sharing is not None
    link = conn.execute(
        "INSERT INTO share_links (patient_id, token_sha256, language, units, created_by,"
        " created_at, expires_at, consent_id) VALUES (%s, %s, 'en', 'us', %s, %s, %s, %s)"
        " RETURNING link_id",
        (pid, f"token-{key}".encode(), clinician, start, start + timedelta(days=30), sharing[0]),
    ).fetchone()
    assert link is not None
    conn.execute(
        "INSERT INTO share_sessions (token_sha256, link_id, created_at, expires_at)"
        " VALUES (%s, %s, %s, %s)",
        (f"session-{key}".encode(), link[0], start, start + timedelta(hours=12)),
    )
    record_access_request(conn, pid, "portability", start.date(), clinician)
    # the patient app, the documents and the physician's questions (issues 20 and 21)
    app_link = conn.execute(
        "INSERT INTO patient_app_links (patient_id, token_sha256, created_by, created_at,"
        " expires_at) VALUES (%s, %s, %s, %s, %s) RETURNING link_id",
        (pid, f"app-{key}".encode(), clinician, start, start + timedelta(days=3)),
    ).fetchone()
    assert app_link is not None
    phone = conn.execute(
        "INSERT INTO patient_credentials (patient_id, link_id, token_sha256, created_at,"
        " expires_at) VALUES (%s, %s, %s, %s, %s) RETURNING credential_id",
        (pid, app_link[0], f"phone-{key}".encode(), start, last_care),
    ).fetchone()
    assert phone is not None
    conn.execute(
        "INSERT INTO patient_messages (patient_id, kind, sent_by, sent_at, read_at,"
        " read_by_credential) VALUES (%s, 'we_will_call', %s, %s, %s, %s)",
        (pid, clinician, start, start + timedelta(minutes=5), phone[0]),
    )
    conn.execute(
        "INSERT INTO patient_push_subscriptions (patient_id, credential_id, endpoint, p256dh,"
        " auth) VALUES (%s, %s, %s, 'p256dh', 'auth')",
        (pid, phone[0], f"https://push.example/{key}"),
    )
    conn.execute(
        "INSERT INTO patient_reminders (patient_id, reminder_id, local_date, due_at,"
        " claimed_at, outcome, settled_at) VALUES (%s, 'morning_vitals', %s, %s, %s,"
        " 'delivered', %s)",
        (pid, start.date(), start, start, start),
    )
    conn.execute(
        "INSERT INTO wound_photos (patient_id, taken_at, media_type, width_px, height_px,"
        " image) VALUES (%s, %s, 'image/jpeg', 1, 1, %s)",
        (pid, start, b"\xff\xd8\xff\xd9"),
    )
    questionnaire = load_questionnaires()["digestive_surgery"]
    record_response(conn, pid, questionnaire, "en", {"pain_rest": 3}, uuid.uuid4(), start)
    conn.execute(
        "INSERT INTO patient_documents (patient_id, kind, language, period_start, period_end,"
        " created_at, created_by, pdf, pdf_sha256, fhir_json_gz) VALUES (%s,"
        " 'end_of_monitoring', 'en', %s, %s, %s, 'clinician:1', 'pdf', 'sha', 'gz')",
        (pid, start, last_care, last_care),
    )
    conn.execute(
        "INSERT INTO physician_questions (patient_id, link_id, kind, body, request_key,"
        " asked_at) VALUES (%s, %s, 'news', 'new treatment', %s, %s)",
        (pid, link[0], f"request-{key}", start),
    )
    for action, detail in [
        ("patient_read", {}),
        ("share_view", {"address": "203.0.113.7", "shown": ["summary"]}),
    ]:
        conn.execute(
            "INSERT INTO audit_log (at, actor, action, patient_id, detail) VALUES (%s,"
            " 'clinician:1', %s, %s, %s)",
            (start, action, pid, Jsonb(detail)),
        )
    answer = conn.execute(
        "INSERT INTO later_reports (patient_id, answered_at, pain) VALUES (%s, %s, 3)"
        " RETURNING answer_id",
        (pid, start),
    ).fetchone()
    assert answer is not None
    conn.execute(
        "INSERT INTO later_report_photos (answer_id, jpeg) VALUES (%s, '\\xffd8')", (answer[0],)
    )
    return pid


def _refresh(conn: psycopg.Connection) -> None:
    """The trend aggregates up to date, on either flavour."""
    if detect(conn) is Flavour.TIMESCALEDB:
        for view in ("vitals_1m", "vitals_1h"):
            conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
    else:
        refresh_aggregates(conn)


def _holdings(conn: psycopg.Connection, pid: int) -> dict[str, int]:
    """How many rows of ``pid`` every table and view with a patient_id holds, plus the
    tables that only reference them."""
    counts = {}
    views = [  # TimescaleDB's continuous aggregates are views
        str(r[0])
        for r in conn.execute(
            "SELECT c.table_name FROM information_schema.columns c"
            " JOIN information_schema.tables t USING (table_schema, table_name)"
            " WHERE c.table_schema = current_schema() AND c.column_name = 'patient_id'"
            " AND t.table_type = 'VIEW'"
        )
    ]
    for table in [*patient_tables(conn), *patient_matviews(conn), *views]:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE patient_id = %s").format(sql.Identifier(table)),
            (pid,),
        ).fetchone()
        assert row is not None
        counts[table] = int(row[0])
    for name, query in {
        "alert_events": "SELECT count(*) FROM alert_events JOIN alerts USING (alert_id)"
        " WHERE patient_id = %s",
        "push_deliveries": "SELECT count(*) FROM push_deliveries JOIN alerts USING (alert_id)"
        " WHERE patient_id = %s",
        "share_sessions": "SELECT count(*) FROM share_sessions JOIN share_links USING (link_id)"
        " WHERE patient_id = %s",
        "questionnaire_answers": "SELECT count(*) FROM questionnaire_answers"
        " JOIN questionnaire_responses USING (response_id) WHERE patient_id = %s",
        "later_report_photos": "SELECT count(*) FROM later_report_photos JOIN later_reports"
        " USING (answer_id) WHERE patient_id = %s",
        "reading_conflicts": "SELECT count(*) FROM reading_conflicts r JOIN enrollments e"
        " ON e.device_id = r.device_id AND e.valid @> r.time WHERE e.patient_id = %s",
    }.items():
        row = conn.execute(query, (pid,)).fetchone()
        assert row is not None
        counts[name] = int(row[0])
    return counts


def test_purge_leaves_nothing_of_an_expired_record_and_touches_nothing_else(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        _sibling_tables(conn)
        now = _now(conn)
        team = ensure_team(conn, "Retention team")
        clinician = create_clinician(
            conn, "ret@hopital.example", "Dr Ret", "physician", "x", [team]
        )
        # the clock is 20 years on, minus 15 days: care that ended 30 days ago is past it,
        # care that ended yesterday is not
        clock = now + timedelta(days=365 * 20 + 5) - timedelta(days=15)
        row = conn.execute(
            "SELECT %s::timestamptz - make_interval(years => 20)", (clock,)
        ).fetchone()
        assert row is not None
        cutoff = row[0]
        expired = _patient_with_everything(
            conn, "old", team, clinician, cutoff - timedelta(days=15)
        )
        kept = _patient_with_everything(conn, "new", team, clinician, cutoff + timedelta(days=14))
        # an old record whose kit is still enrolled: care goes on, nothing is purged
        enrolled = ensure_patient(conn, "RET-enrolled", team)
        conn.execute(
            "UPDATE patients SET created_at = %s WHERE patient_id = %s",
            (cutoff - timedelta(days=400), enrolled),
        )
        register_device(conn, "ox-ret-enrolled", "oximeter", "gw-ret-new")
        enroll(conn, "ox-ret-enrolled", enrolled, cutoff - timedelta(days=399))
        # a dashboard read names both patients in its list
        conn.execute(
            "INSERT INTO audit_log (at, actor, action, detail) VALUES (%s, 'clinician:1',"
            " 'dashboard_read', %s)",
            (cutoff - timedelta(days=16), Jsonb({"patients": [expired, kept]})),
        )
        # an address seen 10 days before the clock: within its own period
        conn.execute(
            "INSERT INTO audit_log (at, actor, action, patient_id, detail) VALUES (%s,"
            " 'share_link:1', 'share_view', %s, %s)",
            (clock - timedelta(days=10), kept, Jsonb({"address": "198.51.100.4"})),
        )
        conn.execute(
            "INSERT INTO login_attempts (key, attempts, last_at) VALUES"
            " ('addr:203.0.113.9', 3, %s)",
            (now - timedelta(days=2),),
        )
        _refresh(conn)
        before_expired = _holdings(conn, expired)
        before_kept = _holdings(conn, kept)
        before_enrolled = _holdings(conn, enrolled)
        tables = patient_tables(conn)
        # the purge finds the tables a later feature adds, and every table here is checked
        assert {"later_reports", "consents", "access_requests", "vitals"} <= set(tables)
        assert [t for t, n in before_expired.items() if n == 0] == [], [
            t for t, n in before_expired.items() if n == 0
        ]
        plan = deletion_plan(conn)
        assert plan.order.index("later_report_photos") < plan.order.index("later_reports")
        assert plan.order.index("share_links") < plan.order.index("consents")
        assert plan.order.index("alert_events") < plan.order.index("alerts")
        assert all(
            plan.order.index(t) < plan.order.index("patients")
            for t in ("enrollments", "consents", "alerts", "later_reports")
        )

        report = purge(conn, clock, RULES)

        assert report.patients_purged == 1
        after_expired = _holdings(conn, expired)
        assert {t: n for t, n in after_expired.items() if n} == {}
        assert _holdings(conn, kept) == before_kept
        assert _holdings(conn, enrolled) == before_enrolled
        listed = conn.execute(
            "SELECT detail -> 'patients' FROM audit_log WHERE action = 'dashboard_read'"
        ).fetchone()
        assert listed == ([kept],)
        # addresses: gone from rows older than a year before the clock, kept in the recent
        addresses = conn.execute(
            "SELECT detail ->> 'address' FROM audit_log WHERE detail ? 'address'"
        ).fetchall()
        assert addresses == [("198.51.100.4",)]
        assert conn.execute("SELECT count(*) FROM login_attempts").fetchone() == (0,)
        run = conn.execute(
            "SELECT clock_at, patients_purged, rows_deleted, addresses_cleared,"
            " finished_at IS NOT NULL FROM purge_runs"
        ).fetchone()
        assert run is not None
        assert run[0] == clock
        assert run[1] == 1
        assert run[2]["vitals"] == before_expired["vitals"]
        assert run[2]["patients"] == 1
        assert run[2]["later_report_photos"] == 1
        assert run[3] == 2  # one audit row, one sign-in counter
        assert run[4] is True
        assert set(run[2]) <= set(tables) | {
            "alert_events",
            "push_deliveries",
            "share_sessions",
            "later_report_photos",
            "questionnaire_answers",
            "reading_conflicts",
            "audit_log (lists)",
            # TimescaleDB: rows deleted from the continuous aggregates' materializations
            "vitals_1m",
            "vitals_1h",
        }
        # a second run finds nothing more and says so; a run within a day is not due
        assert purge(conn, clock, RULES).patients_purged == 0
        assert due(conn, clock, timedelta(days=1)) is False
        assert due(conn, clock + timedelta(days=2), timedelta(days=1)) is True


def test_a_patient_within_the_period_is_kept_whole(db: str) -> None:
    """The boundary: the same record one day before its 20 years end stays whole."""
    with psycopg.connect(db, autocommit=True) as conn:
        _sibling_tables(conn)
        now = _now(conn)
        team = ensure_team(conn, "Retention team 2")
        clinician = create_clinician(conn, "ret2@hopital.example", "Dr Ret", "admin", "x", [team])
        pid = _patient_with_everything(conn, "edge", team, clinician, now - timedelta(days=40))
        _refresh(conn)
        before = _holdings(conn, pid)
        row = conn.execute(
            "SELECT %s::timestamptz + make_interval(years => 20) - interval '1 day'",
            (now - timedelta(days=40),),
        ).fetchone()
        assert row is not None
        assert purge(conn, row[0], RULES).patients_purged == 0
        assert _holdings(conn, pid) == before
        row = conn.execute(
            "SELECT %s::timestamptz + make_interval(years => 20) + interval '1 day'",
            (now - timedelta(days=40),),
        ).fetchone()
        assert row is not None
        assert purge(conn, row[0], RULES).patients_purged == 1
        assert {t: n for t, n in _holdings(conn, pid).items() if n} == {}


def test_purge_command_and_the_daily_service(db: str) -> None:
    """``postop purge`` runs once and prints counts; ``postop retention`` runs the purge
    at start-up when a day has passed since the last run, and not again at a restart."""
    import os
    import subprocess
    import sys
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTOP_")}
    env["POSTOP_DATABASE_URL"] = db
    once = subprocess.run(
        [sys.executable, "-m", "postop.cli", "purge"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert once.stdout.startswith("purge: 0 patients past 20 years")
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("UPDATE purge_runs SET clock_at = clock_at - interval '2 days'")
    service = subprocess.Popen(
        [sys.executable, "-m", "postop.cli", "retention"],
        env={**env, "POSTOP_RETENTION__CHECK_S": "0.5"},
    )
    try:
        with psycopg.connect(db, autocommit=True) as conn:
            deadline = time.monotonic() + 30
            count = 1
            while time.monotonic() < deadline and count < 2:
                row = conn.execute(
                    "SELECT count(*) FROM purge_runs WHERE finished_at IS NOT NULL"
                ).fetchone()
                count = int(row[0]) if row else 0
                time.sleep(0.2)
            assert count == 2
            time.sleep(2)  # four more checks: the run of today is not repeated
            assert conn.execute("SELECT count(*) FROM purge_runs").fetchone() == (2,)
    finally:
        service.terminate()
        assert service.wait(10) == 0
