"""Technical and per-patient inputs of the rules over a real database: a gateway whose
last will said offline, a low device battery, a high rate of implausible readings, a
clinician's threshold override, and a gone push subscription being deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from alerts.alert_store import Notice
from alerts.engine import Engine
from alerts.notify import CareTeamNotifier
from alerts.protocol import builtin_protocols
from alerts.webpush import DeliveryOutcome
from store.overrides import set_override
from store.provisioning import (
    enroll,
    ensure_patient,
    ensure_team,
    register_device,
    register_gateway,
)
from tests.daytime import daytime_zone
from vitals.catalogue import metric


def _rules(conn: psycopg.Connection, patient: int) -> set[str]:
    return {
        r[0]
        for r in conn.execute(
            "SELECT rule_id FROM alerts WHERE patient_id = %s AND state <> 'resolved'", (patient,)
        )
    }


def test_technical_rules_and_overrides(db: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    notices: list[Notice] = []
    engine = Engine(
        db,
        builtin_protocols(),
        lambda _c, n: notices.extend(n),
        clock_ms=lambda: int(now.timestamp() * 1000),
    )
    with psycopg.connect(db, autocommit=True) as conn:
        team = ensure_team(conn, "Tech")
        a = ensure_patient(conn, "P-TECH-A", team, time_zone=daytime_zone(now))
        b = ensure_patient(conn, "P-TECH-B", team, time_zone=daytime_zone(now))
        for pid, gw in ((a, "gw-tech-a"), (b, "gw-tech-b")):
            register_gateway(conn, gw)
            register_device(conn, f"ox-{gw}", "oximeter", gw)
            enroll(conn, f"ox-{gw}", pid, now - timedelta(days=2))
        # A: its gateway's last will said offline two hours ago; its oximeter battery is
        # nearly empty (the team hears of a battery at 5 % or less: issue 17)
        conn.execute(
            "INSERT INTO gateway_status (gateway_id, online, status_at)"
            " VALUES ('gw-tech-a', false, %s), ('gw-tech-b', true, %s)",
            (now - timedelta(hours=2), now),
        )
        rows = [
            (now - timedelta(minutes=5), a, "ox-gw-tech-a", metric("battery_pct").metric_id, 4.0)
        ]
        # B: SpO2 at 91% for 20 minutes, under spo2_low's 92%; later a clinician sets B's
        # threshold to 90% (known chronic lung disease)
        rows += [
            (now - timedelta(seconds=30 * i), b, "ox-gw-tech-b", metric("spo2_pct").metric_id, 91.0)
            for i in range(40)
        ]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
                " VALUES (%s, %s, %s, %s, %s)",
                rows,
            )
            # 30 implausible readings refused from B's gateway in the last hour
            cur.executemany(
                "INSERT INTO dead_letters (topic, gateway_id, seq, reason, payload, payload_sha256)"
                " VALUES ('devices/gw-tech-b/readings', 'gw-tech-b', %s, 'implausible spo2_pct 12',"
                " %s, sha256(%s))",
                [(i, f"{i}".encode(), f"{i}".encode()) for i in range(30)],
            )
        engine.evaluate_once(conn, [a, b])
        assert {"gateway_offline", "battery_low"} <= _rules(conn, a)
        assert {"spo2_low", "implausible_rate"} <= _rules(conn, b)
        assert "gateway_offline" not in _rules(conn, b)

        set_override(conn, b, "spo2_low", "threshold", 90.0, "dr-test", "COPD, usual 90-91%")
        audit = conn.execute(
            "SELECT actor, action, detail->>'previous' FROM audit_log WHERE patient_id = %s", (b,)
        ).fetchall()
        assert audit == [("dr-test", "threshold_override", None)]
        conn.execute(
            "UPDATE alerts SET state = 'resolved' WHERE patient_id = %s AND rule_id = 'spo2_low'",
            (b,),
        )
        engine.evaluate_once(conn, [b])
        assert "spo2_low" not in _rules(conn, b)  # 91% is fine for this patient now


def test_gone_subscription_is_deleted_and_delivery_recorded(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        team = ensure_team(conn, "Gone")
        patient = ensure_patient(conn, "P-GONE", team)
        sid = conn.execute(
            "INSERT INTO push_subscriptions (team_id, role, endpoint, p256dh, auth)"
            " VALUES (%s, 'coordinator', 'http://127.0.0.1:9/push/x', 'k', 'a')"
            " RETURNING subscription_id",
            (team,),
        ).fetchone()
        alert = conn.execute(
            "INSERT INTO alerts (patient_id, rule_id, kind, priority, state, opened_at, evidence)"
            " VALUES (%s, 'spo2_low', 'clinical', 'medium', 'active', now(), '{}')"
            " RETURNING alert_id",
            (patient,),
        ).fetchone()
        assert sid is not None
        assert alert is not None
        notifier = CareTeamNotifier(db, builtin_protocols())
        notifier._alert_of[sid[0]] = alert[0]
        notifier.record(
            DeliveryOutcome(sid[0], delivered=False, gone=True, attempts=1, error="HTTP 410")
        )
        left = conn.execute("SELECT count(*) FROM push_subscriptions").fetchone()
        recorded = conn.execute("SELECT delivered, error FROM push_deliveries").fetchall()
    assert left == (0,)
    assert recorded == [(False, "HTTP 410")]
