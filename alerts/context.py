"""What the rules need besides the vitals windows, loaded for a set of patients in a few
set-based queries: protocol and NEWS2 settings per patient, clinician overrides, the
state of each home gateway, device batteries and the rate of implausible readings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from numpy.typing import NDArray

from vitals.catalogue import BY_NAME
from vitals.device_kinds import KIND_METRICS

DEFAULT_TIME_ZONE = "Europe/Paris"


def _empty_f() -> NDArray[np.float64]:
    return np.zeros(0, dtype=np.float64)


def _empty_b() -> NDArray[np.bool_]:
    return np.zeros(0, dtype=np.bool_)


@lru_cache(maxsize=256)
def _offset_s(zone: str, hour_key: int) -> int:
    """The zone's UTC offset at that hour (cached: a zone changes offset twice a year)."""
    at = datetime.fromtimestamp(hour_key * 3600, tz=UTC).astimezone(ZoneInfo(zone))
    offset = at.utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


@dataclass(frozen=True)
class PatientContext:
    """Per patient (one row each, ``patient_ids`` order). The fields after ``overrides``
    may be left out (empty): they then mean "not recorded" for every patient (NaN, False,
    the default time zone)."""

    patient_ids: NDArray[np.int64]  # sorted
    team_ids: NDArray[np.int64]
    protocols: tuple[str, ...]
    discharged_ms: NDArray[np.int64]  # -1 where unknown
    spo2_scale2: NDArray[np.bool_]
    on_oxygen: NDArray[np.bool_]
    overrides: dict[tuple[int, str, str], float]
    # per metric, per patient: the first enrolment of a device that measures it (epoch
    # ms; -1 when no device of theirs ever did): where missing data starts counting.
    # None: not recorded (a replay), every metric expected from discharge
    measuring_since_ms: Mapping[str, NDArray[np.int64]] | None = None
    # the patient's usual values as the hospital recorded them at discharge (NaN: not
    # entered); the rules also learn them from the first day's readings and judge a
    # change against the nearer of the two
    discharge_sbp_mmhg: NDArray[np.float64] = field(default_factory=_empty_f)
    discharge_hr_bpm: NDArray[np.float64] = field(default_factory=_empty_f)
    discharge_weight_kg: NDArray[np.float64] = field(default_factory=_empty_f)
    # a beta-blocker (or other rate control) blunts the pulse's rise in bleeding/sepsis
    beta_blocker: NDArray[np.bool_] = field(default_factory=_empty_b)
    # known obstructive sleep apnoea or obesity hypoventilation: night dips expected
    sleep_apnoea: NDArray[np.bool_] = field(default_factory=_empty_b)
    time_zones: tuple[str, ...] = ()  # IANA names: where "night" is for the patient

    def __post_init__(self) -> None:
        n = len(self.patient_ids)
        for name, fill in (
            ("discharge_sbp_mmhg", np.nan),
            ("discharge_hr_bpm", np.nan),
            ("discharge_weight_kg", np.nan),
        ):
            if len(getattr(self, name)) == 0:
                object.__setattr__(self, name, np.full(n, fill, dtype=np.float64))
        for name in ("beta_blocker", "sleep_apnoea"):
            if len(getattr(self, name)) == 0:
                object.__setattr__(self, name, np.zeros(n, dtype=np.bool_))
        if not self.time_zones:
            object.__setattr__(self, "time_zones", (DEFAULT_TIME_ZONE,) * n)

    def utc_offset_s(self, at_ms: int) -> NDArray[np.int64]:
        """Each patient's UTC offset (seconds) at ``at_ms``: local time is UTC plus it."""
        hour = at_ms // 3_600_000
        return np.asarray([_offset_s(z, hour) for z in self.time_zones], dtype=np.int64)

    def index(self, patient_id: int) -> int:
        return int(np.searchsorted(self.patient_ids, patient_id))

    def subset(self, protocol: str) -> NDArray[np.bool_]:
        return np.asarray([p == protocol for p in self.protocols], dtype=np.bool_)


def followed_patients(conn: psycopg.Connection, only: Sequence[int] | None) -> PatientContext:
    """Patients whose follow-up has not ended (all of them, or among ``only``)."""
    sql = (
        "SELECT patient_id, team_id, protocol,"
        " coalesce((extract(epoch FROM discharged_at) * 1000)::bigint, -1),"
        " spo2_scale = 2, on_oxygen,"
        " coalesce(discharge_sbp_mmhg, 'NaN'), coalesce(discharge_hr_bpm, 'NaN'),"
        " coalesce(discharge_weight_kg, 'NaN'), beta_blocker, sleep_apnoea, time_zone"
        " FROM patients"
        " WHERE (follow_up_ended_at IS NULL OR follow_up_ended_at > now())"
    )
    params: tuple[object, ...] = ()
    if only is not None:
        sql += " AND patient_id = ANY(%s)"
        params = (list(only),)
    rows = conn.execute(sql + " ORDER BY patient_id", params).fetchall()
    ids = [int(r[0]) for r in rows]
    overrides = {
        (int(p), str(rule), str(param)): float(v)
        for p, rule, param, v in conn.execute(
            "SELECT patient_id, rule_id, param, value FROM threshold_overrides"
            " WHERE patient_id = ANY(%s)",
            (ids,),
        ).fetchall()
    }
    patients = np.asarray(ids, dtype=np.int64)
    return PatientContext(
        patient_ids=patients,
        team_ids=np.asarray([r[1] for r in rows], dtype=np.int64),
        protocols=tuple(str(r[2]) for r in rows),
        discharged_ms=np.asarray([r[3] for r in rows], dtype=np.int64),
        spo2_scale2=np.asarray([bool(r[4]) for r in rows], dtype=np.bool_),
        on_oxygen=np.asarray([bool(r[5]) for r in rows], dtype=np.bool_),
        overrides=overrides,
        measuring_since_ms=measuring_since_ms(conn, patients),
        discharge_sbp_mmhg=np.asarray([r[6] for r in rows], dtype=np.float64),
        discharge_hr_bpm=np.asarray([r[7] for r in rows], dtype=np.float64),
        discharge_weight_kg=np.asarray([r[8] for r in rows], dtype=np.float64),
        beta_blocker=np.asarray([bool(r[9]) for r in rows], dtype=np.bool_),
        sleep_apnoea=np.asarray([bool(r[10]) for r in rows], dtype=np.bool_),
        time_zones=tuple(str(r[11]) for r in rows),
    )


def measuring_since_ms(
    conn: psycopg.Connection, ids: NDArray[np.int64]
) -> dict[str, NDArray[np.int64]]:
    """Per metric, per patient, when a device measuring it was first enrolled (-1: never),
    from each device kind's first enrolment (ended enrolments count: the metric was
    expected from then on)."""
    rows = conn.execute(
        "SELECT e.patient_id, d.kind,"
        " min(extract(epoch FROM coalesce(lower(e.valid), 'epoch')) * 1000)::bigint"
        " FROM enrollments e JOIN devices d USING (device_id)"
        " WHERE e.patient_id = ANY(%s) GROUP BY 1, 2",
        (ids.tolist(),),
    ).fetchall()
    out: dict[str, NDArray[np.int64]] = {}
    for patient_id, kind, first_ms in rows:
        i = int(np.searchsorted(ids, int(patient_id)))
        for metric in KIND_METRICS.get(str(kind), ()):
            since = out.setdefault(metric, np.full(len(ids), -1, dtype=np.int64))
            if since[i] < 0 or first_ms < since[i]:
                since[i] = int(first_ms)
    return out


def _per_patient(
    ids: NDArray[np.int64], rows: list[tuple[int, float]], fill: float
) -> NDArray[np.float64]:
    out = np.full(len(ids), fill, dtype=np.float64)
    if rows:
        data = np.asarray(rows, dtype=np.float64)
        idx = np.searchsorted(ids, data[:, 0].astype(np.int64))
        ok = (idx < len(ids)) & (ids[np.minimum(idx, len(ids) - 1)] == data[:, 0])
        out[idx[ok]] = data[ok, 1]
    return out


def gateway_offline_since_ms(
    conn: psycopg.Connection, ids: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Per patient, since when a gateway of theirs has said (or its will said) offline;
    NaN when every gateway is online or has never reported."""
    rows = conn.execute(
        "SELECT e.patient_id, min(extract(epoch FROM s.status_at) * 1000)"
        " FROM enrollments e JOIN devices d USING (device_id)"
        " JOIN gateway_status s ON s.gateway_id = d.gateway_id"
        " WHERE e.patient_id = ANY(%s) AND e.valid @> now() AND NOT s.online"
        " GROUP BY 1",
        (ids.tolist(),),
    ).fetchall()
    return _per_patient(ids, rows, np.nan)


def lowest_battery_pct(
    conn: psycopg.Connection, ids: NDArray[np.int64], since_ms: int
) -> NDArray[np.float64]:
    """Per patient, the lowest latest battery level among their devices; NaN if none."""
    rows = conn.execute(
        "SELECT patient_id, min(value) FROM ("
        "  SELECT DISTINCT ON (device_id) patient_id, value FROM vitals"
        "  WHERE patient_id = ANY(%s) AND metric_id = %s AND value IS NOT NULL"
        "    AND time >= TIMESTAMPTZ 'epoch' + %s * INTERVAL '1 millisecond'"
        "  ORDER BY device_id, time DESC) latest GROUP BY 1",
        (ids.tolist(), BY_NAME["battery_pct"].metric_id, since_ms),
    ).fetchall()
    return _per_patient(ids, rows, np.nan)


def implausible_counts(
    conn: psycopg.Connection, ids: NDArray[np.int64], since_ms: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per patient: readings refused as implausible, and readings stored, since ``since_ms``
    (dead letters are attributed through the gateway that sent them)."""
    bad = conn.execute(
        "SELECT e.patient_id, count(DISTINCT l.dead_letter_id) FROM dead_letters l"
        " JOIN devices d ON d.gateway_id = l.gateway_id"
        " JOIN enrollments e ON e.device_id = d.device_id AND e.valid @> l.received_at"
        " WHERE e.patient_id = ANY(%s) AND l.reason LIKE 'implausible%%'"
        "   AND l.received_at >= TIMESTAMPTZ 'epoch' + %s * INTERVAL '1 millisecond'"
        " GROUP BY 1",
        (ids.tolist(), since_ms),
    ).fetchall()
    good = conn.execute(
        "SELECT patient_id, count(*) FROM vitals WHERE patient_id = ANY(%s)"
        " AND time >= TIMESTAMPTZ 'epoch' + %s * INTERVAL '1 millisecond' GROUP BY 1",
        (ids.tolist(), since_ms),
    ).fetchall()
    return _per_patient(ids, bad, 0.0), _per_patient(ids, good, 0.0)
