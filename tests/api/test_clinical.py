"""What clinicians do through the API, asserted on the database: the dashboard's order,
trend buckets against raw rows, acknowledging and resolving alerts, notes, overrides,
push subscriptions; and the 4xx messages for bad requests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from alerts.notify import REASON_CODES
from api.app import create_app
from store.aggregates import AGGREGATE_VIEWS, refresh_aggregates
from store.flavour import Flavour
from tests.api.conftest import World, add_vitals, audit_rows, credentials, open_alert
from vitals.settings import Settings


def test_dashboard_puts_the_patient_with_a_high_alert_first(
    login: Callable[[str], TestClient], world: World
) -> None:
    with psycopg.connect(world.db, autocommit=True) as conn:
        # PA-002 has a worse NEWS2 but no alert: the high alert still comes first
        conn.execute(
            "INSERT INTO patient_news2 VALUES (%s, 7, 3, true, now()), (%s, 1, 0, true, now())",
            (world.patient_a2, world.patient_a),
        )
    board = login("coordinator").get("/api/v1/dashboard").json()["patients"]
    assert [p["pseudonym"] for p in board] == ["PA-001", "PA-002"]
    first = board[0]
    assert first["alerts"][0]["priority"] == "high"
    assert first["battery_min_pct"] == 15
    assert first["gateways_online"] is True
    assert {v["metric"] for v in first["latest"]} == {"spo2_pct", "heart_rate_bpm"}
    assert 0 < first["seconds_since_last_reading"] < 600
    assert board[1]["news2_band"] == 3
    assert board[1]["last_reading_at"] is None


def test_dashboard_order_without_alerts_is_news2_then_staleness(
    login: Callable[[str], TestClient], world: World
) -> None:
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute("UPDATE alerts SET state = 'resolved'")
        conn.execute(
            "INSERT INTO patient_news2 VALUES (%s, 5, 2, true, now()), (%s, 5, 2, false, now())",
            (world.patient_a2, world.patient_a),
        )
    board = login("coordinator").get("/api/v1/dashboard").json()["patients"]
    # same band: the patient with no data at all needs a look first
    assert [p["pseudonym"] for p in board] == ["PA-002", "PA-001"]
    assert [p["attention_rank"] for p in board] == [0, 1]


def _refresh(conn: psycopg.Connection, flavour: Flavour, until: datetime | None = None) -> None:
    """Refresh the trend aggregates as if the last refresh had run at ``until`` (default now):
    ingest's refresh of the stand-in views on plain PostgreSQL; with TimescaleDB, what the
    refresh policies do, with the policies paused so that the test decides when it runs."""
    if flavour is Flavour.TIMESCALEDB:
        conn.execute(
            "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_refresh_continuous_aggregate'"
        )
        for view in AGGREGATE_VIEWS:
            conn.execute(
                f"CALL refresh_continuous_aggregate('{view}', NULL, %s::timestamptz)", (until,)
            )
        return
    refresh_aggregates(conn)
    if until is not None:
        conn.execute("UPDATE aggregate_refreshes SET refreshed_at = %s", (until,))


def _raw_buckets(
    db: str, patient_id: int, metric_id: int, start: datetime, step_s: int
) -> dict[object, object]:
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT time_bucket(make_interval(secs => %s), time), count(value), avg(value),"
            " min(value), max(value) FROM vitals WHERE patient_id = %s AND metric_id = %s"
            " AND time >= time_bucket(make_interval(secs => %s), %s::timestamptz)"
            " GROUP BY 1 ORDER BY 1",
            (step_s, patient_id, metric_id, step_s, start),
        ).fetchall()
    return {r[0]: (r[1], round(r[2], 6), r[3], r[4]) for r in rows}


def test_trends_match_raw_rows_across_the_aggregate_watermark(
    login: Callable[[str], TestClient], world: World, pg_flavour: Flavour
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(world.db, autocommit=True) as conn:
        # as if the last refresh ran 10 minutes ago: the last 10 minutes come from raw rows
        _refresh(conn, pg_flavour, until=now - timedelta(minutes=10))
        add_vitals(
            conn,
            world.patient_a,
            "ox-a-001",
            "spo2_pct",
            [(now - timedelta(seconds=s), 88.0) for s in range(5, 50, 5)],
        )
    client = login("physician")
    res = client.get(
        f"/api/v1/patients/{world.patient_a}/trends",
        params={"metric": "spo2_pct", "range": "24h"},
    )
    assert res.status_code == 200
    body = res.json()
    assert body["source"] == "vitals_1m"
    assert body["bucket_s"] == 120
    got = {
        datetime.fromisoformat(p["t"]): (p["n"], round(p["avg"], 6), p["min"], p["max"])
        for p in body["series"][0]["points"]
    }
    expected = _raw_buckets(
        world.db, world.patient_a, 2, datetime.fromisoformat(body["start"]), 120
    )
    assert got == expected
    assert sum(v[0] for v in got.values()) == 599 + 9


def test_late_readings_join_the_trend_at_the_next_refresh(
    login: Callable[[str], TestClient], world: World, pg_flavour: Flavour
) -> None:
    """A home back online sends readings measured hours ago: bucketed from the views, they
    appear once the views are refreshed (ingest does it every minute on plain PostgreSQL;
    TimescaleDB's policy does it on its own)."""
    now = datetime.now(UTC).replace(microsecond=0)
    client = login("physician")
    url = f"/api/v1/patients/{world.patient_a}/trends"
    with psycopg.connect(world.db, autocommit=True) as conn:
        _refresh(conn, pg_flavour)
        add_vitals(conn, world.patient_a, "ox-a-001", "temp_c", [(now - timedelta(hours=3), 38.4)])

    def points() -> list[dict[str, object]]:
        body = client.get(url, params={"metric": "temp_c", "range": "24h"}).json()
        pts: list[dict[str, object]] = body["series"][0]["points"]
        return pts

    assert points() == []
    with psycopg.connect(world.db, autocommit=True) as conn:
        _refresh(conn, pg_flavour)
    assert [(p["n"], p["avg"]) for p in points()] == [(1, 38.4)]


def test_trends_reject_bad_requests_with_a_readable_message(
    login: Callable[[str], TestClient], world: World
) -> None:
    client = login("physician")
    url = f"/api/v1/patients/{world.patient_a}/trends"
    res = client.get(url, params={"metric": "spo2"})
    assert res.status_code == 422
    assert res.json()["detail"] == "Measure: not valid."
    res = client.get(url, params={"metric": "spo2_pct", "start": "2026-01-01T00:00:00Z"})
    assert res.status_code == 422
    assert res.json()["detail"] == "Give both start and end, or a range."
    res = client.get(
        url,
        params={
            "metric": "spo2_pct",
            "start": "2026-01-02T00:00:00Z",
            "end": "2026-01-01T00:00:00Z",
        },
    )
    assert res.json()["detail"] == "The end must come after the start."
    res = client.get(url)
    assert res.status_code == 422
    assert res.json()["detail"] == "Measure: required."


def test_acknowledge_then_resolve_with_a_note(
    login: Callable[[str], TestClient], world: World
) -> None:
    client = login("coordinator")
    res = client.post(f"/api/v1/alerts/{world.alert_a}/acknowledge")
    assert res.status_code == 200
    assert res.json()["state"] == "acknowledged"
    assert res.json()["acknowledged_by"] == "Infirmière A"
    again = client.post(f"/api/v1/alerts/{world.alert_a}/acknowledge")
    assert again.status_code == 409
    assert "no longer waiting for acknowledgement" in again.json()["detail"]
    empty = client.post(f"/api/v1/alerts/{world.alert_a}/resolve", json={"note": ""})
    assert empty.status_code == 422
    done = client.post(
        f"/api/v1/alerts/{world.alert_a}/resolve", json={"note": "Called: probe was loose"}
    )
    assert done.json()["state"] == "resolved"
    with psycopg.connect(world.db) as conn:
        events = conn.execute(
            "SELECT transition, actor, note FROM alert_events WHERE alert_id = %s"
            " ORDER BY event_id",
            (world.alert_a,),
        ).fetchall()
    assert events == [
        ("opened", "system", None),
        ("acknowledged", "clinician:2", None),
        ("resolved", "clinician:2", "Called: probe was loose"),
    ]


def test_notes_join_the_timeline(login: Callable[[str], TestClient], world: World) -> None:
    client = login("coordinator")
    res = client.post(
        f"/api/v1/patients/{world.patient_a}/notes", json={"body": "Rappel du patient, stable."}
    )
    assert res.status_code == 201
    timeline = client.get(f"/api/v1/patients/{world.patient_a}/timeline").json()
    assert [n["body"] for n in timeline["notes"]] == ["Rappel du patient, stable."]
    assert timeline["notes"][0]["author"] == "Infirmière A"
    assert timeline["alerts"][0]["events"][0]["transition"] == "opened"
    assert timeline["alerts"][0]["evidence"] == {"value": 86.0, "threshold": 88.0}


def test_override_is_stored_audited_and_validated(
    login: Callable[[str], TestClient], world: World
) -> None:
    client = login("physician")
    url = f"/api/v1/patients/{world.patient_a}/overrides"
    res = client.put(
        url,
        json={
            "rule_id": "spo2_low",
            "param": "threshold",
            "value": 89,
            "reason": "COPD, 90% usual",
        },
    )
    assert res.status_code == 200
    row = next(o for o in res.json() if o["rule_id"] == "spo2_low")
    assert row["value"] == 89
    assert row["default_value"] == 92
    assert row["set_by"] == "Dr A"
    with psycopg.connect(world.db) as conn:
        stored = conn.execute(
            "SELECT value, set_by FROM threshold_overrides WHERE patient_id = %s",
            (world.patient_a,),
        ).fetchall()
    assert stored == [(89.0, "clinician:3")]
    assert audit_rows(world.db, "threshold_override")[0][2]["previous"] is None  # type: ignore[index]
    unknown = client.put(
        url, json={"rule_id": "spo2_low", "param": "duration_s", "value": 60, "reason": "x" * 5}
    )
    assert unknown.status_code == 422
    assert "not an adjustable parameter" in unknown.json()["detail"]
    absurd = client.put(
        url, json={"rule_id": "spo2_low", "param": "threshold", "value": 300, "reason": "typo"}
    )
    assert absurd.status_code == 422
    assert absurd.json()["detail"] == "A threshold must lie between 50 and 100."
    # a weight fall of zero or less would alert on every weighing
    for rule_id in ("weight_loss", "dehydration"):
        flat = client.put(
            url, json={"rule_id": rule_id, "param": "fall_above", "value": 0, "reason": "typo"}
        )
        assert flat.status_code == 422
        assert flat.json()["detail"] == "A fall threshold must be positive."
    smaller = client.put(
        url,
        json={"rule_id": "dehydration", "param": "fall_above", "value": 0.8, "reason": "45 kg"},
    )
    assert smaller.status_code == 200
    row = next(o for o in smaller.json() if o["rule_id"] == "dehydration")
    assert (row["value"], row["default_value"]) == (0.8, 1.0)


def test_push_subscription_is_stored_for_the_team_and_role(
    login: Callable[[str], TestClient], world: World
) -> None:
    client = login("physician")
    assert client.get("/api/v1/push/public-key").json() == {"public_key": "BPublicKeyForTests"}
    res = client.post(
        "/api/v1/push/subscriptions",
        json={
            "endpoint": "https://8.8.4.4/push/abc",  # a public address (no DNS offline)
            "expirationTime": None,
            "keys": {"p256dh": "B" + "A" * 86, "auth": "c2VjcmV0c2VjcmV0"},
        },
    )
    assert res.status_code == 201
    with psycopg.connect(world.db) as conn:
        rows = conn.execute("SELECT team_id, role, clinician_id FROM push_subscriptions").fetchall()
    assert rows == [(world.team_a, "physician", 3)]


def test_notification_words_follow_the_clinicians_language(
    login: Callable[[str], TestClient], app_settings: Settings
) -> None:
    """A push carries codes; the team's service worker words it from these, in the
    language of the clinician whose browser it is (never an internal code)."""
    fr = login("coordinator").get("/api/v1/push/texts").json()
    assert fr["titles"]["opened"] == "Nouvelle alerte"
    assert fr["bodies"]["high"] == "Un patient doit être vu (priorité haute)."
    assert "{minutes} min" in fr["bodies"]["no_data"]
    en = login("physician").get("/api/v1/push/texts").json()
    assert en["titles"]["escalated"] == "Alert escalated to you"
    # every code the alerts engine sends has its words in both
    for texts in (fr, en):
        assert set(texts["titles"]) == {*REASON_CODES.values(), "alert", "no_data"}
        assert set(texts["bodies"]) == {"high", "medium", "low", "no_data"}
    assert all(fr["titles"][k] != en["titles"][k] for k in en["titles"])
    with TestClient(create_app(app_settings)) as anonymous:
        assert anonymous.get("/api/v1/push/texts").status_code == 401


def test_follow_up_end_stops_the_dashboard_listing_later(
    login: Callable[[str], TestClient], world: World
) -> None:
    client = login("admin")
    res = client.post(
        f"/api/v1/patients/{world.patient_a}/end-follow-up", json={"note": "Fin du suivi J30"}
    )
    assert res.status_code == 200
    body = res.json()
    assert body["follow_up_ended_at"] is not None
    assert all(d["end"] is not None for d in body["devices"])
    again = client.post(f"/api/v1/patients/{world.patient_a}/end-follow-up", json={})
    assert again.status_code == 409
    board = client.get("/api/v1/dashboard").json()["patients"]
    row = next(p for p in board if p["patient_id"] == world.patient_a)
    assert row["follow_up_ended"]
    # nobody watches a patient who left the programme: the open alert is resolved by the
    # admin, with an event saying why, and leaves the dashboard
    assert row["alerts"] == []
    with psycopg.connect(world.db) as conn:
        state, by, note = conn.execute(
            "SELECT state, resolved_by, resolution_note FROM alerts WHERE alert_id = %s",
            (world.alert_a,),
        ).fetchone() or (None, None, None)
        events = conn.execute(
            "SELECT transition, note FROM alert_events WHERE alert_id = %s ORDER BY event_id",
            (world.alert_a,),
        ).fetchall()
    assert (state, by, note) == ("resolved", "clinician:1", "Fin du suivi J30")
    assert events[-1] == ("follow_up_ended", "Fin du suivi J30")
    page = client.get(f"/patients/{world.patient_a}", headers={"Accept-Language": ""})
    assert "resolved: follow-up ended" not in page.text  # the admin's account reads French
    assert "clôturée : suivi terminé" in page.text


def test_metrics_name_routes_not_patients(app_settings: Settings, world: World) -> None:
    # /metrics without a token answers only on this machine: a loopback client here
    with TestClient(create_app(app_settings), client=("127.0.0.1", 50000)) as client:
        signed = client.post(
            "/api/v1/session", json=credentials(app_settings, world.emails["coordinator"])
        )
        assert signed.status_code == 200
        client.get(f"/api/v1/patients/{world.patient_a}")
        text = client.get("/metrics").text
    assert 'route="/api/v1/patients/{patient_id}",status="200"' in text
    assert f"/api/v1/patients/{world.patient_a}" not in text
    assert "postop_api_request_seconds_bucket" in text


def test_alert_link_from_a_push_opens_the_patient_page(
    login: Callable[[str], TestClient], world: World
) -> None:
    with psycopg.connect(world.db, autocommit=True) as conn:
        alert = open_alert(conn, world.patient_a2, "hr_high", "medium")
    res = login("coordinator").get(f"/alerts/{alert}", follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == f"/patients/{world.patient_a2}#alert-{alert}"
