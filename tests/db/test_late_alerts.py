"""Episodes that ended before their readings arrived (a home offline for hours): the engine
opens one alert per episode nobody was alerted to, marked late with the episode's times,
latched until a person acknowledges it whatever its priority; never a second one for the
same episode, none where a live alert already covered it, none for an episode still going
on (the live rule has it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.alert_store import Notice
from alerts.engine import Engine
from alerts.protocol import builtin_protocols
from store.alert_actions import acknowledge, resolve
from store.provisioning import ensure_patient, ensure_team
from tests.daytime import daytime_zone
from vitals.catalogue import metric

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)


def _readings(
    conn: psycopg.Connection, patient: int, name: str, start: datetime, values: list[float]
) -> None:
    """One reading every 30 s from ``start``, as ingest would have stored them."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " VALUES (%s, %s, %s, %s, %s)",
            [
                (
                    start + timedelta(seconds=30 * i),
                    patient,
                    f"dev-{patient}-{name}",
                    metric(name).metric_id,
                    v,
                )
                for i, v in enumerate(values)
            ],
        )


def _mark(conn: psycopg.Connection, patient: int, since: datetime) -> None:
    """What ingest leaves with a late batch."""
    conn.execute(
        "INSERT INTO late_readings (patient_id, since) VALUES (%s, %s) ON CONFLICT (patient_id)"
        " DO UPDATE SET since = LEAST(late_readings.since, EXCLUDED.since)",
        (patient, since),
    )


def _alerts(conn: psycopg.Connection, patient: int) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT rule_id, priority, state, late, condition_onset_at, condition_cleared_at"
        " FROM alerts WHERE patient_id = %s AND kind = 'clinical' ORDER BY rule_id",
        (patient,),
    ).fetchall()


@dataclass
class World:
    engine: Engine
    ids: dict[str, int]
    notices: list[Notice]
    clock: dict[str, int]

    def at(self, t: datetime) -> int:
        self.clock["ms"] = int(t.timestamp() * 1000)
        return self.clock["ms"]


@pytest.fixture
def world(db: str) -> World:
    clock = {"ms": int(NOW.timestamp() * 1000)}
    notices: list[Notice] = []
    engine = Engine(
        db, builtin_protocols(), lambda _c, n: notices.extend(n), clock_ms=lambda: clock["ms"]
    )
    with psycopg.connect(db, autocommit=True) as conn:
        team = ensure_team(conn, "Late")
        ids = {name: ensure_patient(conn, f"P-LATE-{name}", team) for name in ("a", "b", "c")}
        conn.execute(
            "UPDATE patients SET protocol = 'cardiac_surgery', discharged_at = %s, time_zone = %s",
            # every episode (up to 3 h back) in the patient's day; night limits are tested apart
            (NOW - timedelta(days=2), daytime_zone(NOW, hour=17)),
        )
    return World(engine, ids, notices, clock)


def test_an_episode_over_before_its_readings_came_opens_one_late_latched_alert(
    db: str, world: World
) -> None:
    engine, ids, notices = world.engine, world.ids, world.notices
    patient = ids["a"]
    t0 = NOW - timedelta(hours=3)
    with psycopg.connect(db, autocommit=True) as conn:
        # offline from t0 to now: an hour of 97, 8 minutes at 85, 97 again; and 20 minutes
        # of heart rate at 125 (a medium-priority rule), over more than an hour ago (the
        # pulse rule keeps a spot reading for an hour: one more recent is still live)
        _readings(conn, patient, "spo2_pct", t0, [97.0] * 120 + [85.0] * 16 + [97.0] * 120)
        _readings(conn, patient, "heart_rate_bpm", t0 + timedelta(hours=1), [125.0] * 40)
        # and two cuff measurements: pulse 120 over 100 mmHg (shock index 1.2), then 80/125
        for minutes, pulse, systolic in ((30, 120.0, 100.0), (90, 80.0, 125.0)):
            at = t0 + timedelta(minutes=minutes)
            _readings(conn, patient, "heart_rate_bpm", at, [pulse])
            _readings(conn, patient, "bp_systolic_mmhg", at, [systolic])
        _mark(conn, patient, t0)
        engine.evaluate_once(conn, [patient])
        found = _alerts(conn, patient)
        assert found == [
            (
                "hr_high",
                "medium",
                "active",
                True,
                # the cuff's pulse of 120 at t0 + 30 min began the run (gaps up to an
                # hour are tolerated between readings beyond the limit)
                t0 + timedelta(minutes=30),
                t0 + timedelta(hours=1, minutes=20),
            ),
            (
                "shock_index",
                "medium",
                "active",
                True,
                t0 + timedelta(minutes=30),
                t0 + timedelta(minutes=31),
            ),
            (
                "spo2_critical",
                "high",
                "active",
                True,
                # readings settled over 5 minutes (their median): the fall counts from
                # its third minute, and so does the recovery
                t0 + timedelta(hours=1, minutes=2),
                t0 + timedelta(hours=1, minutes=10),
            ),
        ]
        late_ids = {r[0] for r in conn.execute("SELECT alert_id FROM alerts WHERE late").fetchall()}
        assert sorted(n.reason for n in notices if n.alert_id in late_ids) == ["opened"] * 3
        assert conn.execute("SELECT count(*) FROM late_readings").fetchone() == (0,)
        events = conn.execute(
            "SELECT count(*) FROM alert_events WHERE transition = 'opened_late'"
        ).fetchone()
        assert events == (3,)

        # the same stretch delivered again (another worker, a re-sync): nothing new
        _mark(conn, patient, t0 + timedelta(minutes=30))
        notices.clear()
        engine.evaluate_once(conn, [patient])
        assert len(_alerts(conn, patient)) == 3
        assert [n for n in notices if n.reason == "opened"] == []

        # hours later, nobody has looked: still active, escalated, not auto-resolved
        world.at(NOW + timedelta(hours=3))
        for _ in range(2):
            engine.evaluate_once(conn, None)
        states = conn.execute(
            "SELECT rule_id, state, escalation_tier > 0 FROM alerts WHERE patient_id = %s"
            " AND late ORDER BY rule_id",
            (patient,),
        ).fetchall()
        assert states == [
            ("hr_high", "active", True),
            ("shock_index", "active", True),
            ("spo2_critical", "active", True),
        ]

        # acknowledged, it resolves like any cleared alert; a later re-sync of the same
        # stretch does not bring it back
        for (alert_id,) in conn.execute(
            "SELECT alert_id FROM alerts WHERE patient_id = %s AND late", (patient,)
        ).fetchall():
            acknowledge(conn, alert_id, "dr-late", world.clock["ms"])
        world.at(NOW + timedelta(hours=5))
        engine.evaluate_once(conn, None)
        assert {r[2] for r in _alerts(conn, patient)} == {"resolved"}
        _mark(conn, patient, t0)
        engine.evaluate_once(conn, None)
        assert len(_alerts(conn, patient)) == 3


def test_no_late_alert_where_a_live_one_covered_the_episode_or_it_goes_on(
    db: str, world: World
) -> None:
    engine, ids, notices = world.engine, world.ids, world.notices
    seen, ongoing = ids["b"], ids["c"]
    start = NOW - timedelta(minutes=40)
    with psycopg.connect(db, autocommit=True) as conn:
        # b: the team was alerted live during the desaturation and resolved the alert;
        # then the rest of that afternoon arrives late, the same episode in it
        _readings(conn, seen, "spo2_pct", start, [97.0] * 10 + [85.0] * 10)
        at = world.at(start + timedelta(minutes=10))
        engine.evaluate_once(conn, [seen])
        (alert_id,) = conn.execute(
            "SELECT alert_id FROM alerts WHERE patient_id = %s", (seen,)
        ).fetchone() or (None,)
        assert alert_id is not None
        resolve(conn, alert_id, "dr-live", "called the patient, oximeter misplaced", at)
        _readings(conn, seen, "spo2_pct", start + timedelta(minutes=10), [85.0] * 6 + [97.0] * 50)
        # c: offline during a desaturation that is still going on when the home returns
        _readings(conn, ongoing, "spo2_pct", start, [97.0] * 68 + [85.0] * 12)
        for p in (seen, ongoing):
            _mark(conn, p, start)
        world.at(NOW)
        notices.clear()
        engine.evaluate_once(conn, [seen, ongoing])
        spo2 = {
            p: [r[:4] for r in _alerts(conn, p) if str(r[0]).startswith("spo2")]
            for p in ids.values()
        }
        assert spo2[seen] == [("spo2_critical", "high", "resolved", False)]
        assert spo2[ongoing] == [("spo2_critical", "high", "active", False)]
        assert conn.execute("SELECT count(*) FROM alerts WHERE late").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM late_readings").fetchone() == (0,)


def test_an_episode_arriving_over_several_batches_is_one_alert_with_its_whole_span(
    db: str, world: World
) -> None:
    """A long outbox drains in many batches: the engine may see the start of a run before
    its end; the same run seen further along extends its alert instead of opening more."""
    engine, patient = world.engine, world.ids["b"]
    t0 = NOW - timedelta(hours=6)
    with psycopg.connect(db, autocommit=True) as conn:
        # (readings are settled over 5 minutes: a run counts from its third minute)
        _readings(conn, patient, "spo2_pct", t0, [97.0] * 20 + [86.0] * 12)
        _mark(conn, patient, t0)
        engine.evaluate_once(conn, [patient])
        first = _alerts(conn, patient)
        assert [r[:4] for r in first] == [("spo2_critical", "high", "active", True)]
        assert first[0][5] == t0 + timedelta(minutes=16)
        _readings(conn, patient, "spo2_pct", t0 + timedelta(minutes=16), [84.0] * 8 + [97.0] * 20)
        _mark(conn, patient, t0 + timedelta(minutes=16))
        engine.evaluate_once(conn, [patient])
        found = conn.execute(
            "SELECT condition_onset_at, condition_cleared_at, evidence->>'value' FROM alerts"
            " WHERE patient_id = %s AND rule_id = 'spo2_critical'",
            (patient,),
        ).fetchall()
    assert found == [(t0 + timedelta(minutes=12), t0 + timedelta(minutes=22), "84.0")]
