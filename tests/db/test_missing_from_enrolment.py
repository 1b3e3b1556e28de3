"""Missing-data alerts count from the first enrolment of a device that measures the
metric (issue 19): a patient without an oximeter is never missing SpO2, one whose
oximeter was enrolled an hour ago is not missing it yet, and the evidence of a real
silence is its real length, not the rule's window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from alerts.context import followed_patients
from alerts.evaluate import evaluate
from alerts.protocol import builtin_protocols
from alerts.source import SqlSource
from store.provisioning import (
    enroll,
    ensure_patient,
    ensure_team,
    register_device,
    register_gateway,
)
from vitals.catalogue import metric


def _patient(conn: psycopg.Connection, key: str, kinds: dict[str, timedelta]) -> int:
    """A patient discharged two days ago, with devices of these kinds enrolled that long ago."""
    now = datetime.now(UTC)
    team = ensure_team(conn, "Missing data team")
    pid = ensure_patient(conn, f"P-{key}", team)
    conn.execute(
        "UPDATE patients SET protocol = 'digestive_surgery', discharged_at = %s"
        " WHERE patient_id = %s",
        (now - timedelta(days=2), pid),
    )
    register_gateway(conn, f"gw-{key}")
    for kind, ago in kinds.items():
        device = f"{kind}-{key}"
        register_device(conn, device, kind, f"gw-{key}")
        enroll(conn, device, pid, now - ago)
    return pid


def test_missing_spo2_counts_from_the_oximeter_enrolment(db: str) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(db, autocommit=True) as conn:
        none = _patient(conn, "none", {})
        thermo = _patient(conn, "thermo", {"thermometer": timedelta(days=2)})
        new = _patient(conn, "new", {"pulse_oximeter": timedelta(hours=1)})
        silent = _patient(conn, "silent", {"oximeter": timedelta(days=3)})
        last = now - timedelta(hours=30)
        conn.execute(
            "INSERT INTO vitals (time, patient_id, device_id, metric_id, value)"
            " VALUES (%s, %s, 'oximeter-silent', %s, 96)",
            (last, silent, metric("spo2_pct").metric_id),
        )
        now_ms = int(now.timestamp() * 1000)
        ctx = followed_patients(conn, None)
        found = evaluate(SqlSource(conn), ctx, builtin_protocols(), now_ms)
    no_spo2 = {f.patient_id: f for f in found if f.rule_id == "no_spo2"}
    assert not no_spo2[none].firing  # no device measures SpO2: nothing is missing
    assert not no_spo2[thermo].firing
    assert not no_spo2[new].firing  # enrolled an hour ago: a 10 h silence cannot be yet
    assert no_spo2[silent].firing
    silent_s = no_spo2[silent].evidence["silent_s"]
    assert abs(silent_s - 30 * 3600) < 120, silent_s  # the real silence, not the window
    assert no_spo2[silent].evidence["last_reading_ms"] == (int(last.timestamp()) // 60) * 60_000
    assert no_spo2[silent].onset_ms == (int(last.timestamp()) // 60) * 60_000
