"""Committed readings become (patients x bins) arrays in one query: averaged per bin,
unreliable (motion, questionable) readings and special values left out, gaps explicit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

from alerts.window_sql import load_window
from store.provisioning import ensure_patient, ensure_team
from vitals.catalogue import metric
from vitals.flags import ReadingFlag

END = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_window_bins_average_and_skip_unreliable_readings(db: str) -> None:
    spo2 = metric("spo2_pct").metric_id
    with psycopg.connect(db, autocommit=True) as conn:
        team = ensure_team(conn, "W")
        a, b = ensure_patient(conn, "P-WA", team), ensure_patient(conn, "P-WB", team)
        rows = [
            (END - timedelta(minutes=10, seconds=30), a, 96.0, 0),
            (END - timedelta(minutes=10, seconds=10), a, 94.0, 0),  # same bin: mean 95
            (END - timedelta(minutes=1, seconds=30), a, 60.0, int(ReadingFlag.MOTION)),
            (END - timedelta(minutes=1, seconds=20), a, None, int(ReadingFlag.NOT_A_NUMBER)),
            (END - timedelta(minutes=2, seconds=5), b, 91.0, 0),
            (END - timedelta(hours=2), b, 80.0, 0),  # outside the window
        ]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO vitals (time, patient_id, device_id, metric_id, value, flags)"
                " VALUES (%s, %s, 'ox', %s, %s, %s)",
                [(t, p, spo2, v, f) for t, p, v, f in rows],
            )
        window = load_window(
            conn, [b, a], ["spo2_pct", "heart_rate_bpm"], int(END.timestamp() * 1000), 3600, 60
        )
    assert window.patient_ids.tolist() == sorted([a, b])
    assert window.n_bins == 60
    assert set(window.metrics) == {"spo2_pct"}  # no heart rate at all
    w = window.metrics["spo2_pct"]
    ia, ib = window.patient_ids.tolist().index(a), window.patient_ids.tolist().index(b)
    assert np.flatnonzero(w.present[ia]).tolist() == [49]  # the motion bin is a gap
    assert w.values[ia, 49] == 95.0
    assert np.flatnonzero(w.present[ib]).tolist() == [57]
    assert w.values[ib, 57] == 91.0


def test_a_reading_less_than_a_millisecond_before_the_end_is_in_the_last_bin(db: str) -> None:
    """Readings carry microseconds: one 400 us before the window's end (a whole-ms end)
    was rounded up to the end's millisecond and indexed one bin past the array (an engine
    round failed with IndexError, at random, whenever a reading fell there)."""
    spo2 = metric("spo2_pct").metric_id
    with psycopg.connect(db, autocommit=True) as conn:
        patient = ensure_patient(conn, "P-WEDGE", ensure_team(conn, "W"))
        for t, value in (
            (END - timedelta(microseconds=400), 93.0),
            (END - timedelta(hours=1), 97.0),
        ):
            conn.execute(
                "INSERT INTO vitals (time, patient_id, device_id, metric_id, value, flags)"
                " VALUES (%s, %s, 'ox', %s, %s, 0)",
                (t, patient, spo2, value),
            )
        window = load_window(conn, [patient], ["spo2_pct"], int(END.timestamp() * 1000), 3600, 60)
    w = window.metrics["spo2_pct"]
    assert np.flatnonzero(w.present[0]).tolist() == [0, 59]
    assert (w.values[0, 0], w.values[0, 59]) == (97.0, 93.0)
