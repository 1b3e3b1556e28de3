"""The alert quality evaluation replays cohorts from memory; it is only worth something
if its source answers exactly what the engine's SQL answers. Same simulated readings,
once in PostgreSQL and once in memory: the same windows, batteries and findings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest
from firmware_sim.physiology import DAY_MS, HOUR_MS
from firmware_sim.scenarios import FollowUp, plan

from alerts.context import followed_patients
from alerts.evaluate import evaluate
from alerts.lifecycle import Finding
from alerts.protocol import builtin_protocols
from alerts.source import SqlSource
from bench.alert_quality.cohort import Member, Readings, members, simulate
from bench.alert_quality.source import ArraySource
from store.provisioning import ensure_patient, ensure_team
from vitals.catalogue import BY_ID

SEED = 3
DAYS = 3


def _cohort() -> list[Member]:
    """Three patients, one per protocol, one of them with an embolism on day 2, and a
    patient of the realistic cohort in new atrial fibrillation (cuff readings flagged
    irregular pulse, a patch's rhythm readings if the kit has one)."""
    out = []
    for m in members(12, DAYS, SEED, cohort="legacy")[:3]:
        scenario = "pulmonary_embolism" if m.index == 1 else "uneventful"
        follow = FollowUp(m.start_ms - 2 * DAY_MS, m.start_ms, m.end_ms)
        p = plan(scenario, SEED, m.key, follow)
        out.append(replace(m, scenario=scenario, truths=p.truths, offline=None))
    af = next(m for m in members(40, DAYS, SEED) if m.scenario == "atrial_fibrillation")
    out.append(replace(af, index=3, key="qaf", offline=None))
    return out


def _store(conn: psycopg.Connection, cohort: list[Member], readings: list[Readings]) -> list[int]:
    """The readings ingest would have stored (implausible ones are dead letters), under
    the database's patient ids; returns those ids."""
    team = ensure_team(conn, "EVAL")
    ids = []
    for m, r in zip(cohort, readings, strict=True):
        pid = ensure_patient(conn, f"P-{m.key}", team)
        conn.execute(
            "UPDATE patients SET protocol = %s, discharged_at = to_timestamp(%s)"
            " WHERE patient_id = %s",
            (m.protocol, m.start_ms / 1000, pid),
        )
        ids.append(pid)
        with conn.cursor().copy(
            "COPY vitals (time, patient_id, device_id, metric_id, value, flags) FROM STDIN"
        ) as copy:
            for metric_id, t, v, flags, dev in zip(
                r.metric_id.tolist(),
                r.measured_ms.tolist(),
                r.value.tolist(),
                r.flags.tolist(),
                r.device.tolist(),
                strict=True,
            ):
                metric = BY_ID[metric_id]
                if np.isfinite(v) and not metric.is_plausible(v):
                    continue
                copy.write_row(
                    (
                        datetime.fromtimestamp(t / 1000, UTC),
                        pid,
                        f"dev-{m.key}-{dev}",
                        metric_id,
                        v if np.isfinite(v) else None,
                        flags,
                    )
                )
    return ids


@pytest.fixture(scope="module")
def cohort() -> tuple[list[Member], list[Readings]]:
    c = _cohort()
    return c, [simulate(m, SEED) for m in c]


def test_windows_batteries_and_findings_match_the_sql_path(
    db: str, cohort: tuple[list[Member], list[Readings]]
) -> None:
    members_, readings = cohort
    with psycopg.connect(db, autocommit=True) as conn:
        ids = _store(conn, members_, readings)
        renumbered = [replace(m, index=pid) for m, pid in zip(members_, ids, strict=True)]
        memory = ArraySource(renumbered, readings)
        sql = SqlSource(conn)
        end = members_[0].end_ms
        irregular_bins = 0
        for end_ms, span_s, bin_s in [
            (end, 6 * 3600, 60),
            (end - 17 * HOUR_MS, 6 * 3600, 60),
            (end - 5 * HOUR_MS, 8 * 3600, 300),
            (end, 2 * 86_400, 3600),
        ]:
            metrics = ["spo2_pct", "heart_rate_bpm", "temp_c", "bp_systolic_mmhg", "weight_kg"]
            a = memory.window(ids, metrics, end_ms, span_s, bin_s)
            b = sql.window(ids, metrics, end_ms, span_s, bin_s)
            assert a.patient_ids.tolist() == b.patient_ids.tolist()
            assert set(a.metrics) == set(b.metrics)
            for name in a.metrics:
                assert np.array_equal(a.metrics[name].present, b.metrics[name].present), name
                irr_a, irr_b = a.metrics[name].irregular, b.metrics[name].irregular
                assert irr_a is not None
                assert irr_b is not None
                assert np.array_equal(irr_a, irr_b), name
                irregular_bins += int(irr_a.sum())
                pa, va, vb = a.metrics[name].present, a.metrics[name].values, b.metrics[name].values
                assert np.allclose(va[pa], vb[pa]), name
            assert a.metrics["heart_rate_bpm"].present.sum() > 10  # not trivially equal
        assert irregular_bins > 0  # the AF patient's cuff flagged some
        ids_arr = np.asarray(sorted(ids), dtype=np.int64)
        since = end - DAY_MS
        low_mem: np.ndarray = memory.lowest_battery_pct(ids_arr, since, end)
        low_sql: np.ndarray = sql.lowest_battery_pct(ids_arr, since, end)
        assert np.allclose(low_mem, low_sql, equal_nan=True)
        for metric_name in ("spo2_pct", "weight_kg", "glucose_mmol_l"):
            for at in (end, end - 17 * HOUR_MS):
                last_mem = memory.last_reading_ms(ids_arr, metric_name, at)
                last_sql = sql.last_reading_ms(ids_arr, metric_name, at)
                assert np.array_equal(last_mem, last_sql, equal_nan=True), metric_name
        # the whole evaluation at the end of the follow-up: the same findings
        ctx = followed_patients(conn, ids)
        protocols = builtin_protocols()
        found_sql = evaluate(sql, ctx, protocols, end)
        found_mem = evaluate(memory, ctx, protocols, end)

    def key(f: Finding) -> tuple[int, str]:
        return (f.patient_id, f.rule_id)

    assert sorted(map(key, found_sql)) == sorted(map(key, found_mem))
    firing_sql = {key(f): f.evidence for f in found_sql if f.firing}
    firing_mem = {key(f): f.evidence for f in found_mem if f.firing}
    assert firing_sql.keys() == firing_mem.keys()
    for k, ev in firing_sql.items():
        for name, value in ev.items():
            other = firing_mem[k][name]
            assert other == pytest.approx(value, nan_ok=True), (k, name)
