"""Where the rules' inputs come from. The engine reads committed rows (``SqlSource``);
the alert quality evaluation (bench/alert_quality) replays simulated cohorts from memory
through the very same rule code by providing another source with these four methods."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import psycopg
from numpy.typing import NDArray

from alerts import context
from alerts.window import Window
from alerts.window_sql import last_reading_ms, load_window

F = NDArray[np.float64]


class ReadingSource(Protocol):
    def window(
        self,
        patient_ids: Sequence[int],
        metric_names: Sequence[str],
        end_ms: int,
        span_s: int,
        bin_s: int,
    ) -> Window:
        """The trailing ``span_s`` before ``end_ms`` in ``bin_s`` bins: the readings
        committed by ``end_ms``, reliable ones only, averaged per bin."""
        ...

    def last_reading_ms(self, ids: NDArray[np.int64], metric: str, now_ms: int) -> F:
        """Per patient, the start of the minute of their latest reliable reading of
        ``metric`` committed by ``now_ms``, however old; NaN if none."""
        ...

    def gateway_offline_since_ms(self, ids: NDArray[np.int64], now_ms: int) -> F:
        """Per patient, since when a home gateway of theirs is offline; NaN if online."""
        ...

    def lowest_battery_pct(self, ids: NDArray[np.int64], since_ms: int, now_ms: int) -> F:
        """Per patient, the lowest latest battery level of their devices; NaN if none."""
        ...

    def implausible_counts(self, ids: NDArray[np.int64], since_ms: int, now_ms: int) -> tuple[F, F]:
        """Per patient, readings refused as implausible and readings stored."""
        ...


@dataclass(frozen=True)
class SqlSource:
    """Committed rows in PostgreSQL; ``now_ms`` is the database's own now."""

    conn: psycopg.Connection

    def window(
        self,
        patient_ids: Sequence[int],
        metric_names: Sequence[str],
        end_ms: int,
        span_s: int,
        bin_s: int,
    ) -> Window:
        return load_window(self.conn, patient_ids, metric_names, end_ms, span_s, bin_s)

    def last_reading_ms(self, ids: NDArray[np.int64], metric: str, now_ms: int) -> F:
        return last_reading_ms(self.conn, ids, metric, now_ms)

    def gateway_offline_since_ms(self, ids: NDArray[np.int64], now_ms: int) -> F:
        return context.gateway_offline_since_ms(self.conn, ids)

    def lowest_battery_pct(self, ids: NDArray[np.int64], since_ms: int, now_ms: int) -> F:
        return context.lowest_battery_pct(self.conn, ids, since_ms)

    def implausible_counts(self, ids: NDArray[np.int64], since_ms: int, now_ms: int) -> tuple[F, F]:
        return context.implausible_counts(self.conn, ids, since_ms)
