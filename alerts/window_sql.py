"""Loading committed readings into (patients x time bins) numpy arrays in one query per
window: the database buckets and averages, numpy scatters the result into place.

Readings flagged as motion artifacts, questionable or early estimates are left out of
clinical windows (they count for the device-problem rules instead); special values
(value NULL) never enter a window. Times carry microseconds: a bin is found from the
time's millisecond rounded down (rounded to nearest, a reading less than half a
millisecond before the end fell one bin past the array).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import psycopg
from numpy.typing import NDArray

from alerts.window import MetricWindow, Window
from vitals.catalogue import BY_ID, BY_NAME
from vitals.flags import ReadingFlag

UNRELIABLE = int(ReadingFlag.MOTION | ReadingFlag.QUESTIONABLE | ReadingFlag.EARLY_ESTIMATE)

_BUCKETS = """
SELECT patient_id, metric_id,
       (floor(extract(epoch FROM time) * 1000)::bigint - %(start_ms)s) / %(bin_ms)s AS bin,
       avg(value) AS value, bool_or((flags & %(irregular)s) <> 0)::int AS irregular
FROM vitals
WHERE patient_id = ANY(%(patients)s) AND metric_id = ANY(%(metrics)s)
  AND time >= TIMESTAMPTZ 'epoch' + %(start_ms)s * INTERVAL '1 millisecond'
  AND time <  TIMESTAMPTZ 'epoch' + %(end_ms)s * INTERVAL '1 millisecond'
  AND value IS NOT NULL AND (flags & %(unreliable)s) = 0
GROUP BY 1, 2, 3
"""


def load_window(
    conn: psycopg.Connection,
    patient_ids: Sequence[int],
    metric_names: Sequence[str],
    end_ms: int,
    span_s: int,
    bin_s: int,
) -> Window:
    """The trailing ``span_s`` before ``end_ms`` in ``bin_s`` bins, for these patients."""
    patients = np.asarray(sorted(set(patient_ids)), dtype=np.int64)
    n_bins = max(1, span_s // bin_s)
    bin_ms = bin_s * 1000
    start_ms = end_ms - n_bins * bin_ms
    metric_ids = [BY_NAME[m].metric_id for m in metric_names]
    rows = conn.execute(
        _BUCKETS,
        {
            "start_ms": start_ms,
            "end_ms": end_ms,
            "bin_ms": bin_ms,
            "patients": patients.tolist(),
            "metrics": metric_ids,
            "unreliable": UNRELIABLE,
            "irregular": int(ReadingFlag.IRREGULAR_PULSE),
        },
    ).fetchall()
    metrics: dict[str, MetricWindow] = {}
    if rows:
        data = np.asarray(rows, dtype=np.float64)
        p_idx = np.searchsorted(patients, data[:, 0].astype(np.int64))
        m_ids = data[:, 1].astype(np.int64)
        bins = data[:, 2].astype(np.int64)
        for metric_id in np.unique(m_ids):
            sel = m_ids == metric_id
            values = np.zeros((len(patients), n_bins), dtype=np.float64)
            present = np.zeros((len(patients), n_bins), dtype=np.bool_)
            irregular = np.zeros((len(patients), n_bins), dtype=np.bool_)
            values[p_idx[sel], bins[sel]] = data[sel, 3]
            present[p_idx[sel], bins[sel]] = True
            irregular[p_idx[sel], bins[sel]] = data[sel, 4] > 0
            metrics[BY_ID[int(metric_id)].name] = MetricWindow(values, present, irregular)
    return Window(patient_ids=patients, end_ms=end_ms, bin_s=bin_s, n_bins=n_bins, metrics=metrics)


_LAST = """
SELECT p, (floor(extract(epoch FROM (
    SELECT time FROM vitals
    WHERE patient_id = p AND metric_id = %(metric)s
      AND time < TIMESTAMPTZ 'epoch' + %(end_ms)s * INTERVAL '1 millisecond'
      AND value IS NOT NULL AND (flags & %(unreliable)s) = 0
    ORDER BY time DESC LIMIT 1)) / 60) * 60000)::bigint
FROM unnest(%(patients)s::bigint[]) AS p
"""


def last_reading_ms(
    conn: psycopg.Connection, ids: NDArray[np.int64], metric: str, end_ms: int
) -> NDArray[np.float64]:
    """Per patient, the minute (epoch ms) of the latest reliable reading of ``metric``
    before ``end_ms``, however long ago (one index probe each); NaN if none."""
    rows = conn.execute(
        _LAST,
        {
            "metric": BY_NAME[metric].metric_id,
            "end_ms": end_ms,
            "unreliable": UNRELIABLE,
            "patients": ids.tolist(),
        },
    ).fetchall()
    found = {int(p): t for p, t in rows}
    return np.asarray(
        [np.nan if found.get(int(p)) is None else float(found[int(p)]) for p in ids.tolist()],
        dtype=np.float64,
    )
