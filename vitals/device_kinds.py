"""Which metrics a device of each kind measures: what lets the missing-data rules expect a
metric only from a patient who has a device for it. Both spellings in use are listed (the
administration form's ``pulse_oximeter`` and the simulated kits' ``oximeter``); a kind not
listed here (``other``) is expected to measure nothing in particular."""

from __future__ import annotations

from collections.abc import Mapping

_OXIMETER = frozenset({"spo2_pct", "heart_rate_bpm", "battery_pct"})
_CUFF = frozenset(
    {"bp_systolic_mmhg", "bp_diastolic_mmhg", "bp_mean_mmhg", "heart_rate_bpm", "battery_pct"}
)
_THERMOMETER = frozenset({"temp_c", "battery_pct"})
_SCALE = frozenset({"weight_kg", "battery_pct"})
_PATCH = frozenset({"heart_rate_bpm", "resp_rate_per_min", "steps_count", "battery_pct"})
_GLUCOSE = frozenset({"glucose_mmol_l", "battery_pct"})

KIND_METRICS: Mapping[str, frozenset[str]] = {
    "oximeter": _OXIMETER,
    "pulse_oximeter": _OXIMETER,
    "bp-cuff": _CUFF,
    "bp_cuff": _CUFF,
    "thermometer": _THERMOMETER,
    "scale": _SCALE,
    "hr-patch": _PATCH,
    "hr_patch": _PATCH,
    "glucose-meter": _GLUCOSE,
    "glucose_meter": _GLUCOSE,
    "pain-diary": frozenset({"pain_score"}),
    "pain_diary": frozenset({"pain_score"}),
}


def kinds_measuring(metric: str) -> list[str]:
    """Every device kind that measures ``metric`` (sorted, for a stable SQL parameter)."""
    return sorted(kind for kind, metrics in KIND_METRICS.items() if metric in metrics)
