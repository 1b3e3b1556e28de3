"""One engine round over a real database: a sustained desaturation opens one high alert
with its evidence and a notice, a second round opens nothing more, recovery clears the
condition, an unacknowledged high alert escalates and stays latched until a person
acknowledges it, then resolves once the condition stayed clear."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from alerts.alert_store import Notice
from alerts.context import followed_patients
from alerts.engine import Engine
from alerts.protocol import builtin_protocols
from store.alert_actions import acknowledge
from store.provisioning import ensure_patient, ensure_team
from tests.daytime import daytime_zone
from vitals.catalogue import metric
from vitals.flags import ReadingFlag


def _spo2(conn: psycopg.Connection, patient: int, end: datetime, values: list[float]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " VALUES (%s, %s, 'ox-eng', %s, %s) ON CONFLICT DO NOTHING",
            [
                (
                    end - timedelta(seconds=30 * (len(values) - i)),
                    patient,
                    metric("spo2_pct").metric_id,
                    v,
                )
                for i, v in enumerate(values)
            ],
        )


def test_desaturation_opens_one_latched_high_alert(db: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    clock = {"ms": int(now.timestamp() * 1000)}
    notices: list[Notice] = []
    engine = Engine(
        db, builtin_protocols(), lambda _c, n: notices.extend(n), clock_ms=lambda: clock["ms"]
    )
    with psycopg.connect(db, autocommit=True) as conn:
        patient = ensure_patient(
            conn, "P-ENGINE", ensure_team(conn, "Engine"), time_zone=daytime_zone(now)
        )
        conn.execute(
            "UPDATE patients SET protocol = 'cardiac_surgery' WHERE patient_id = %s", (patient,)
        )
        _spo2(conn, patient, now - timedelta(minutes=6), [97.0] * 20)
        _spo2(conn, patient, now, [86.0] * 12)  # 6 minutes below 88
        engine.evaluate_once(conn, [patient])
        opened = conn.execute(
            "SELECT alert_id, priority, state, evidence FROM alerts"
            " WHERE patient_id = %s AND rule_id = 'spo2_critical'",
            (patient,),
        ).fetchall()
        assert len(opened) == 1
        alert_id, priority, state, evidence = opened[0]
        assert (priority, state) == ("high", "active")
        assert evidence["value"] == 86.0
        assert any(n.alert_id == alert_id and n.reason == "opened" for n in notices)

        engine.evaluate_once(conn, [patient])  # same data: nothing new
        count = conn.execute(
            "SELECT count(*) FROM alerts WHERE rule_id = 'spo2_critical'"
        ).fetchone()
        assert count == (1,)

        later = now + timedelta(minutes=30)
        _spo2(conn, patient, later, [97.0] * 30)
        clock["ms"] = int(later.timestamp() * 1000)
        engine.evaluate_once(conn, [patient])
        engine.evaluate_once(conn, [patient])
        row = conn.execute(
            "SELECT state, condition_cleared_at IS NOT NULL FROM alerts WHERE alert_id = %s",
            (alert_id,),
        ).fetchone()
        assert row == ("active", True)  # latched: high priority waits for a person

        acknowledge(conn, alert_id, "dr-test", clock["ms"])
        clock["ms"] += 65 * 60_000  # past the protocol's hour of clear condition
        _spo2(conn, patient, later + timedelta(minutes=65), [97.0] * 40)
        engine.evaluate_once(conn, [patient])
        final = conn.execute("SELECT state FROM alerts WHERE alert_id = %s", (alert_id,)).fetchone()
        events = [
            r[0]
            for r in conn.execute(
                "SELECT transition FROM alert_events WHERE alert_id = %s ORDER BY event_id",
                (alert_id,),
            )
        ]
    assert final == ("resolved",)
    # nobody acknowledged within 5 minutes: escalated once (the next tier after 5 more)
    assert events == [
        "opened",
        "condition_cleared",
        "escalated_to_tier_1",
        "acknowledged",
        "auto_resolved",
    ]


def test_new_alert_reaches_the_care_team_as_a_decrypted_web_push(db: str) -> None:
    from alerts.notify import CareTeamNotifier
    from alerts.vapid import generate
    from alerts.webpush import PushNotifier
    from tests.push_endpoint import PushEndpoint
    from tests.stack import wait_for

    keys = generate()
    endpoint = PushEndpoint(keys.public_key_b64url).start()
    protocols = builtin_protocols()
    team = CareTeamNotifier(db, protocols)
    pusher = PushNotifier(
        keys.private_pem,
        "mailto:team@postop.invalid",
        team.record,
        allow_private_endpoints=True,  # the local endpoint on loopback
    )
    team.pusher = pusher
    pusher.start()
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        with psycopg.connect(db, autocommit=True) as conn:
            team_id = ensure_team(conn, "Push team")
            other_team = ensure_team(conn, "Another team")
            patient = ensure_patient(conn, "P-PUSH", team_id, time_zone=daytime_zone(now))
            subs = {}
            for n, (tid, role) in enumerate(
                [(team_id, "coordinator"), (team_id, "physician"), (other_team, "coordinator")],
                start=1,
            ):
                s = endpoint.subscribe(n)
                row = conn.execute(
                    "INSERT INTO push_subscriptions (team_id, role, endpoint, p256dh, auth)"
                    " VALUES (%s, %s, %s, %s, %s) RETURNING subscription_id",
                    (tid, role, s.endpoint, s.p256dh, s.auth),
                ).fetchone()
                assert row is not None
                subs[f"ep{n}"] = row[0]
            _spo2(conn, patient, now, [85.0] * 12)
            engine = Engine(db, protocols, team, clock_ms=lambda: int(now.timestamp() * 1000))
            engine.evaluate_once(conn, [patient])
            wait_for(lambda: len(endpoint.received) >= 1, 15, "the push")
            wait_for(lambda: _count(conn, "push_deliveries") >= 1, 10, "the delivery record")
            alert_ids = [
                r[0]
                for r in conn.execute("SELECT alert_id FROM alerts WHERE rule_id = 'spo2_critical'")
            ]
    finally:
        pusher.stop()
        endpoint.stop()
    # tier 0 of the cardiac/digestive protocols is the coordinator of the patient's team
    assert [
        r.endpoint_id for r in endpoint.received if r.payload["tag"] == f"alert-{alert_ids[0]}"
    ] == ["ep1"]
    assert endpoint.received[0].payload["body"].startswith("A patient needs review")
    assert endpoint.rejected == []


def _count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def test_a_medium_alert_that_clears_is_not_escalated_in_the_same_round(db: str) -> None:
    """The field defect: one round recorded 'condition_cleared' and 'escalated_to_tier_2'
    for a medium spo2_low alert (not latched)."""
    now = datetime.now(UTC).replace(microsecond=0)
    clock = {"ms": int(now.timestamp() * 1000)}
    engine = Engine(db, builtin_protocols(), lambda _c, n: None, clock_ms=lambda: clock["ms"])
    with psycopg.connect(db, autocommit=True) as conn:
        patient = ensure_patient(
            conn, "P-NOESC", ensure_team(conn, "NoEsc"), time_zone=daytime_zone(now)
        )
        conn.execute(
            "UPDATE patients SET protocol = 'cardiac_surgery' WHERE patient_id = %s", (patient,)
        )
        _spo2(conn, patient, now, [90.0] * 30)  # 15 min at 90: spo2_low, medium
        engine.evaluate_once(conn, [patient])
        (alert_id,) = conn.execute(
            "SELECT alert_id FROM alerts WHERE patient_id = %s AND rule_id = 'spo2_low'",
            (patient,),
        ).fetchone() or (None,)
        assert alert_id is not None
        # nobody acknowledges; 30 min later (the medium delay) the saturation is back up
        later = now + timedelta(minutes=30)
        _spo2(conn, patient, later, [97.0] * 30)
        clock["ms"] = int(later.timestamp() * 1000)
        engine.evaluate_once(conn, [patient])
        events = [
            r[0]
            for r in conn.execute(
                "SELECT transition FROM alert_events WHERE alert_id = %s ORDER BY event_id",
                (alert_id,),
            )
        ]
    assert events == ["opened", "condition_cleared"]


def test_own_usual_pressure_and_irregular_pulse_flags_over_sql(db: str) -> None:
    """A beta-blocked patient bleeding: the hospital entered a usual systolic of 145; two
    cuff readings of 104 and 102 (pulse flat at 68, both flagged 'irregular pulse') open
    'systolic below the patient's usual' confirmed (medium) and 'irregular rhythm' (low:
    the rate is slow); nothing crosses the fixed 90 mmHg."""
    now = datetime.now(UTC).replace(microsecond=0)
    engine = Engine(
        db, builtin_protocols(), lambda _c, n: None, clock_ms=lambda: int(now.timestamp() * 1000)
    )
    with psycopg.connect(db, autocommit=True) as conn:
        patient = ensure_patient(
            conn, "P-USUAL", ensure_team(conn, "Usual"), time_zone=daytime_zone(now)
        )
        conn.execute(
            "UPDATE patients SET protocol = 'orthopaedic_surgery', discharge_sbp_mmhg = 145,"
            " beta_blocker = true, discharged_at = %s WHERE patient_id = %s",
            (now - timedelta(days=3), patient),
        )
        ctx = followed_patients(conn, [patient])
        assert ctx.discharge_sbp_mmhg.tolist() == [145.0]
        assert ctx.beta_blocker.tolist() == [True]
        assert ctx.time_zones == (daytime_zone(now),)
        irregular = int(ReadingFlag.IRREGULAR_PULSE)
        rows = []
        for minutes, sbp in ((90, 104.0), (5, 102.0)):
            at = now - timedelta(minutes=minutes)
            rows += [
                (at, patient, "cuff-usual", metric("bp_systolic_mmhg").metric_id, sbp, irregular),
                (at, patient, "cuff-usual", metric("heart_rate_bpm").metric_id, 68.0, irregular),
            ]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO vitals (time, patient_id, device_id, metric_id, value, flags)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                rows,
            )
        engine.evaluate_once(conn, [patient])
        found = {
            r[0]: (r[1], r[2])
            for r in conn.execute(
                "SELECT rule_id, priority, evidence FROM alerts WHERE patient_id = %s"
                " AND kind = 'clinical'",
                (patient,),
            )
        }
    assert set(found) == {"sbp_below_usual", "af_suspected"}
    priority, evidence = found["sbp_below_usual"]
    assert priority == "medium"
    assert evidence["usual"] == 145.0
    assert evidence["threshold"] == 115.0  # 145 - max(30, 20% of 145)
    assert evidence["confirmation_requested"] is False
    assert found["af_suspected"][0] == "low"
    assert found["af_suspected"][1]["irregular_readings"] == 2
