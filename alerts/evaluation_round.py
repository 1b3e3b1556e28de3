"""One evaluation round of one protocol's patients: what every rule of the round reads
(the readings' source, the patients' context, which of them follow the protocol, now),
and how a rule's per-patient arrays become findings. One value passed down instead of
six arguments, so that each kind of rule can live in a module of its own."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from alerts.context import PatientContext
from alerts.lifecycle import Finding
from alerts.protocol import Rule
from alerts.source import ReadingSource
from alerts.window import Window

MINUTE_S = 60
HOUR_S = 3600


@dataclass(frozen=True, eq=False)
class Round:
    """The patients of one protocol (``mask`` over ``ctx``; ``ids`` theirs, sorted) at
    ``now_ms``, their readings from ``source``."""

    source: ReadingSource
    ctx: PatientContext
    mask: NDArray[np.bool_]
    now_ms: int
    ids: NDArray[np.int64] = field(init=False)
    pids: list[int] = field(init=False)

    def __post_init__(self) -> None:
        ids = self.ctx.patient_ids[self.mask]
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "pids", ids.tolist())

    def window(self, metrics: Iterable[str], span_s: int, bin_s: int) -> Window:
        """These patients' trailing ``span_s`` of ``metrics`` in ``bin_s`` bins."""
        return self.source.window(self.pids, sorted(metrics), self.now_ms, span_s, bin_s)

    @cached_property
    def offsets_s(self) -> NDArray[np.int64]:
        """Each patient's UTC offset now (local time is UTC plus it): a time-zone lookup
        per patient, done once a round for the night, waking-hours and reminder rules."""
        return self.ctx.utc_offset_s(self.now_ms)[self.mask]

    def discharged_ms(self) -> NDArray[np.int64]:
        return self.ctx.discharged_ms[self.mask]

    def overridden(self, rule_id: str, name: str, base: NDArray[np.float64]) -> NDArray[np.float64]:
        """``base`` per patient, a clinician's override of the rule's ``name`` where set."""
        out = base.copy()
        if self.ctx.overrides:
            for i, pid in enumerate(self.pids):
                value = self.ctx.overrides.get((pid, rule_id, name))
                if value is not None:
                    out[i] = value
        return out

    def param(self, rule_id: str, name: str, default: float) -> NDArray[np.float64]:
        """A rule parameter per patient: the protocol's value unless a clinician overrode it."""
        return self.overridden(rule_id, name, np.full(len(self.ids), default, dtype=np.float64))

    def findings(
        self,
        rule: Rule,
        firing: NDArray[np.bool_],
        evidence: Mapping[str, NDArray[Any]],
        onset_ms: NDArray[np.int64] | None = None,
        priority: Sequence[str] | None = None,
    ) -> list[Finding]:
        """One finding per patient; evidence only where the rule fires (a cleared
        condition needs none: skipping it for the quiet majority keeps a round cheap)."""
        out = []
        for i, pid in enumerate(self.pids):
            ev = {key: _plain(arr[i]) for key, arr in evidence.items()} if firing[i] else {}
            onset = int(onset_ms[i]) if onset_ms is not None and onset_ms[i] >= 0 else None
            prio = priority[i] if priority is not None else rule.priority
            out.append(
                Finding(pid, rule.id, bool(firing[i]), prio, rule.category, ev, onset)  # type: ignore[arg-type]
            )
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def run_start_ms(window: Window, since_bin: NDArray[np.int64]) -> NDArray[np.int64]:
    """The start of each patient's run (bin ``since_bin`` of ``window``); -1 where none."""
    start = window.end_ms - window.n_bins * window.bin_s * 1000
    return np.where(since_bin >= 0, start + since_bin * window.bin_s * 1000, -1)
