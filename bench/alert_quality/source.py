"""A ``ReadingSource`` over simulated readings held in memory, so a cohort replays through
the engine's own rule code (alerts.evaluate) minute by minute without a database.

It answers what ``alerts.source.SqlSource`` answers, with the same semantics: windows
average the reliable readings (flags and special values excluded as in
``alerts.window_sql``) per bin of [start, end), and say which bins hold a reading
flagged irregular pulse; only readings that have reached the
database by ``now`` count, so a home offline shows nothing new until it is back; battery
is the lowest latest level per device; implausible readings are the ones ingest would
have refused. Per metric, per-minute sums and counts are kept as cumulative arrays, so
any window aligned on the minute is two lookups per bin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from alerts.window import MetricWindow, Window
from alerts.window_sql import UNRELIABLE
from bench.alert_quality.cohort import GATEWAY_WILL_S, Member, Readings
from vitals.catalogue import BY_ID, BY_NAME, CATALOGUE
from vitals.flags import ReadingFlag

MINUTE_MS = 60_000
IRREGULAR = int(ReadingFlag.IRREGULAR_PULSE)
F = NDArray[np.float64]
I64 = NDArray[np.int64]
READING_FIELDS = ("metric_id", "measured_ms", "arrival_ms", "value", "flags", "device")


class ArraySource:
    """Readings of patients ``members`` (their ``index`` is their patient id)."""

    def __init__(self, members: Sequence[Member], readings: Sequence[Readings]) -> None:
        self.ids = np.asarray([m.index for m in members], dtype=np.int64)
        if np.any(np.diff(self.ids) <= 0):
            raise ValueError("members must be sorted by index, without repeats")
        self.t0_ms = min(m.start_ms for m in members)
        self.n_min = (max(m.end_ms for m in members) - self.t0_ms) // MINUTE_MS + 2
        self._readings = list(readings)
        self._offline = [m.offline for m in members]
        self._cum: dict[int, tuple[F, NDArray[np.int32]]] = {}
        self._irregular: dict[int, NDArray[np.int32]] = {}  # cumulative flagged counts
        self._battery: tuple[NDArray[np.float32], NDArray[np.int32]] | None = None
        self._counts: tuple[NDArray[np.int32], NDArray[np.int32]] | None = None

    @property
    def readings(self) -> list[Readings]:
        """Each member's readings, in the members' order (with those added)."""
        return list(self._readings)

    def add(self, patient_id: int, more: Readings) -> None:
        """Readings taken during the replay (a re-measurement the engine asked for); each
        shows from its own time on, as every reading does."""
        row = int(self._rows([patient_id])[0])
        old = self._readings[row]
        cols = [np.concatenate([getattr(old, f), getattr(more, f)]) for f in READING_FIELDS]
        order = np.argsort(cols[2], kind="stable")  # arrival order
        self._readings[row] = Readings(*(c[order] for c in cols))
        self._cum, self._irregular, self._battery, self._counts = {}, {}, None, None

    # --- time -------------------------------------------------------------------------

    def _minute(self, t_ms: NDArray[np.int64] | int) -> NDArray[np.int64]:
        return np.asarray((np.asarray(t_ms) - self.t0_ms) // MINUTE_MS, dtype=np.int64)

    def _limits(self, rows: I64, now_ms: int) -> I64:
        """Per row, the first minute not yet visible at ``now_ms``: the readings of an
        offline home stay at the gateway until the home is back."""
        now_idx = int(self._minute(now_ms))
        out = np.full(len(rows), now_idx, dtype=np.int64)
        for i, row in enumerate(rows.tolist()):
            off = self._offline[row]
            if off is not None and off[0] <= now_ms < off[1]:
                out[i] = min(now_idx, int(self._minute(off[0])))
        return np.clip(out, 0, self.n_min)

    def _rows(self, patient_ids: Sequence[int] | I64) -> I64:
        ids = np.asarray(patient_ids, dtype=np.int64)
        rows = np.searchsorted(self.ids, ids)
        if len(ids) and (np.any(rows >= len(self.ids)) or np.any(self.ids[rows] != ids)):
            raise KeyError("a patient id not in this source")
        return rows

    # --- per-minute cumulative arrays ----------------------------------------------------

    def _per_minute(self, select: list[NDArray[np.bool_]], weights: list[F] | None) -> F:
        out = np.zeros((len(self._readings), self.n_min + 1), dtype=np.float64)
        for row, (r, sel) in enumerate(zip(self._readings, select, strict=True)):
            idx = self._minute(r.measured_ms[sel])
            ok = (idx >= 0) & (idx < self.n_min)
            w = None if weights is None else weights[row][ok]
            out[row, 1:] = np.bincount(idx[ok], weights=w, minlength=self.n_min)[: self.n_min]
        return np.cumsum(out, axis=1)

    def _irregular_cum(self, metric_id: int) -> NDArray[np.int32]:
        self._metric_cum(metric_id)
        return self._irregular[metric_id]

    def _metric_cum(self, metric_id: int) -> tuple[F, NDArray[np.int32]]:
        found = self._cum.get(metric_id)
        if found is None:
            m = BY_ID[metric_id]
            select = [
                (r.metric_id == metric_id)
                & np.isfinite(r.value)
                & (r.value >= m.plausible_min)
                & (r.value <= m.plausible_max)
                & ((r.flags & UNRELIABLE) == 0)
                for r in self._readings
            ]
            sums = self._per_minute(
                select, [r.value[s] for r, s in zip(self._readings, select, strict=True)]
            )
            counts = self._per_minute(select, None).astype(np.int32)
            irregular = [
                sel & ((r.flags & IRREGULAR) != 0)
                for r, sel in zip(self._readings, select, strict=True)
            ]
            self._irregular[metric_id] = self._per_minute(irregular, None).astype(np.int32)
            found = self._cum[metric_id] = (sums, counts)
        return found

    def window(
        self,
        patient_ids: Sequence[int],
        metric_names: Sequence[str],
        end_ms: int,
        span_s: int,
        bin_s: int,
    ) -> Window:
        if end_ms % MINUTE_MS or bin_s % 60:
            raise ValueError("the replay works on whole minutes")
        patients = np.asarray(sorted(set(patient_ids)), dtype=np.int64)
        rows = self._rows(patients)
        n_bins = max(1, span_s // bin_s)
        end_idx = int(self._minute(end_ms))
        edges = end_idx - (n_bins - np.arange(n_bins + 1, dtype=np.int64)) * (bin_s // 60)
        lim = self._limits(rows, end_ms)
        at = np.clip(np.minimum(edges[None, :], lim[:, None]), 0, self.n_min)
        metrics: dict[str, MetricWindow] = {}
        for name in metric_names:
            sums, counts = self._metric_cum(BY_NAME[name].metric_id)
            s = np.diff(sums[rows[:, None], at], axis=1)
            c = np.diff(counts[rows[:, None], at], axis=1)
            present = c > 0
            if present.any():
                values = np.where(present, s / np.maximum(c, 1), 0.0)
                flagged = self._irregular_cum(BY_NAME[name].metric_id)
                irregular = np.diff(flagged[rows[:, None], at], axis=1) > 0
                metrics[name] = MetricWindow(values, present, irregular)
        return Window(
            patient_ids=patients, end_ms=end_ms, bin_s=bin_s, n_bins=n_bins, metrics=metrics
        )

    def last_reading_ms(self, ids: I64, metric: str, now_ms: int) -> F:
        """The minute of each patient's latest reliable reading visible at ``now_ms``."""
        _sums, counts = self._metric_cum(BY_NAME[metric].metric_id)
        rows = self._rows(ids)
        lim = self._limits(rows, now_ms)
        out = np.full(len(rows), np.nan)
        for i, (row, k) in enumerate(zip(rows.tolist(), lim.tolist(), strict=True)):
            seen = counts[row, k]
            if seen > 0:
                minute = int(np.searchsorted(counts[row], seen, side="left")) - 1
                out[i] = float(self.t0_ms + minute * MINUTE_MS)
        return out

    # --- context ------------------------------------------------------------------------

    def gateway_offline_since_ms(self, ids: I64, now_ms: int) -> F:
        out = np.full(len(ids), np.nan)
        for i, row in enumerate(self._rows(ids).tolist()):
            off = self._offline[row]
            if off is not None:
                will_ms = off[0] + GATEWAY_WILL_S * 1000
                if will_ms <= now_ms < off[1]:
                    out[i] = will_ms
        return out

    def _battery_arrays(self) -> tuple[NDArray[np.float32], NDArray[np.int32]]:
        """Per (patient, device, minute k): the latest battery level reported before
        minute k, and the minute it was reported in (-1: none yet)."""
        if self._battery is None:
            n_dev = 1 + max((int(r.device.max()) for r in self._readings if len(r)), default=0)
            level = np.full((len(self._readings), n_dev, self.n_min + 1), np.nan, np.float32)
            when = np.full((len(self._readings), n_dev, self.n_min + 1), -1, np.int32)
            battery = BY_NAME["battery_pct"].metric_id
            for row, r in enumerate(self._readings):
                sel = (r.metric_id == battery) & np.isfinite(r.value)
                idx = self._minute(r.measured_ms[sel])
                ok = (idx >= 0) & (idx < self.n_min)
                order = np.argsort(idx[ok], kind="stable")
                for d, k, v in zip(
                    r.device[sel][ok][order], idx[ok][order], r.value[sel][ok][order], strict=True
                ):
                    level[row, d, k + 1] = v
                    when[row, d, k + 1] = k
                # forward fill along time
                stamp = np.where(when[row] >= 0, np.arange(self.n_min + 1), 0)
                last = np.maximum.accumulate(stamp, axis=1)
                dev = np.arange(n_dev)[:, None]
                level[row] = level[row][dev, last]
                when[row] = when[row][dev, last]
            self._battery = (level, when)
        return self._battery

    def battery_pct(self, ids: I64, since_ms: int, now_ms: int) -> F:
        """Per patient and device (kit index), the latest level reported since
        ``since_ms`` and visible at ``now_ms``; NaN if none."""
        level, when = self._battery_arrays()
        rows = self._rows(ids)
        k = self._limits(rows, now_ms)
        lv = level[rows, :, k].astype(np.float64)  # (P, D)
        fresh = when[rows, :, k] >= int(self._minute(since_ms))
        return np.where(fresh, lv, np.nan)

    def lowest_battery_pct(self, ids: I64, since_ms: int, now_ms: int) -> F:
        lv = self.battery_pct(ids, since_ms, now_ms)
        masked = np.where(np.isfinite(lv), lv, np.inf).min(axis=1)
        return np.where(np.isfinite(masked), masked, np.nan)

    def recharge(
        self, patient_id: int, device: int, from_ms: int, level_pct: Callable[[int], int]
    ) -> None:
        """The device's battery was charged (or its cells replaced) at ``from_ms``,
        during the replay: each of its battery reports from then on reads ``level_pct``
        at its own time."""
        row = int(self._rows([patient_id])[0])
        r = self._readings[row]
        battery = BY_NAME["battery_pct"].metric_id
        sel = np.flatnonzero(
            (r.metric_id == battery) & (r.device == device) & (r.measured_ms >= from_ms)
        )
        value = r.value.copy()
        value[sel] = [float(level_pct(int(t))) for t in r.measured_ms[sel]]
        self._readings[row] = replace(r, value=value)
        self._battery = None
        self._cum.pop(battery, None)
        self._irregular.pop(battery, None)

    def implausible_counts(self, ids: I64, since_ms: int, now_ms: int) -> tuple[F, F]:
        if self._counts is None:
            # ingest refuses a number outside its metric's plausible range
            size = max(m.metric_id for m in CATALOGUE) + 1
            lo, hi = np.full(size, -np.inf), np.full(size, np.inf)
            for m in CATALOGUE:
                lo[m.metric_id], hi[m.metric_id] = m.plausible_min, m.plausible_max
            bad_sel = [
                np.isfinite(r.value) & ((r.value < lo[r.metric_id]) | (r.value > hi[r.metric_id]))
                for r in self._readings
            ]
            good_sel = [~bad for bad in bad_sel]
            self._counts = (
                self._per_minute(bad_sel, None).astype(np.int32),
                self._per_minute(good_sel, None).astype(np.int32),
            )
        bad_cum, good_cum = self._counts
        rows = self._rows(ids)
        hi_k = self._limits(rows, now_ms)
        lo_k = np.clip(np.minimum(int(self._minute(since_ms)), hi_k), 0, self.n_min)
        bad = bad_cum[rows, hi_k] - bad_cum[rows, lo_k]
        good = good_cum[rows, hi_k] - good_cum[rows, lo_k]
        return bad.astype(np.float64), good.astype(np.float64)
