"""Readings as (patients x time bins) arrays: the shape every alert rule works on, so a
rule is one numpy operation over all the patients of a protocol at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class MetricWindow:
    """One metric for P patients over T time bins (oldest first)."""

    values: NDArray[np.float64]  # (P, T); meaningless where not present
    present: NDArray[np.bool_]  # (P, T); True where the bin holds at least one reading
    # (P, T); True where a reading of the bin was flagged IRREGULAR_PULSE (a cuff's
    # "irregular pulse detected"); None when the source does not say
    irregular: NDArray[np.bool_] | None = None


@dataclass(frozen=True)
class Window:
    patient_ids: NDArray[np.int64]  # (P,), sorted
    end_ms: int  # epoch ms UTC of the end of the last bin (exclusive)
    bin_s: int
    n_bins: int
    metrics: Mapping[str, MetricWindow]  # a metric absent here: no reading at all

    def bin_start_ms(self, i: int) -> int:
        return self.end_ms - (self.n_bins - i) * self.bin_s * 1000

    def bin_starts_ms(self) -> NDArray[np.int64]:
        """(T,): epoch ms UTC of the start of every bin."""
        bins = np.arange(self.n_bins, dtype=np.int64)
        return self.end_ms - (self.n_bins - bins) * self.bin_s * 1000


def metric_of(window: Window, name: str) -> MetricWindow:
    """The metric's arrays, all absent when no patient has any reading of it."""
    found = window.metrics.get(name)
    if found is not None:
        return found
    shape = (len(window.patient_ids), window.n_bins)
    return MetricWindow(np.zeros(shape, dtype=np.float64), np.zeros(shape, dtype=np.bool_))
