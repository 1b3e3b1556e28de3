"""Publishing the loaded protocols' overridable parameters to ``protocol_params``, so the
API offers (and accepts) only the overrides this engine applies."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import psycopg

from alerts.protocol import (
    ConfirmedRule,
    CongestionRule,
    DepletionRule,
    FallRule,
    News2Rule,
    Protocol,
    RelativeRule,
    RiseRule,
    SepsisScreenRule,
    SustainedRule,
    TrendRule,
)
from alerts.reported_protocol import CalfPulseRule, ReportedHighRule, ReportedRiseRule

# the rule parameters ``evaluate`` reads through per-patient overrides, with their
# defaults when the rule has no field of that name (NEWS2: scale 1, alert from band 1)
OVERRIDABLE: dict[type, tuple[str, ...]] = {
    SustainedRule: ("threshold",),
    ConfirmedRule: ("threshold",),
    TrendRule: ("slope_per_h_above",),
    RiseRule: ("rise_above",),
    FallRule: ("fall_above",),
    CongestionRule: ("rise_above",),
    DepletionRule: ("fall_above",),
    RelativeRule: ("change_abs",),
    SepsisScreenRule: ("hr_above",),
    # a COPD patient's scale (1 or 2), and the NEWS2 band (1 low-medium, 2 medium, 3
    # high) from which an alert opens, e.g. for a chronic single 3
    News2Rule: ("spo2_scale", "alert_from_band"),
    # the patient's answers (alerts/reported.py)
    ReportedHighRule: ("at_or_above",),
    ReportedRiseRule: ("rise_by",),
    CalfPulseRule: ("hr_above",),
}
DEFAULTS = {"spo2_scale": 1.0, "alert_from_band": 1.0}


def param_rows(
    protocols: Mapping[str, Protocol],
) -> Iterator[tuple[str, str, str, str, str | None, str, float]]:
    for name, proto in sorted(protocols.items()):
        for rule in proto.rules:
            for param in OVERRIDABLE.get(type(rule), ()):
                default = getattr(rule, param, None)
                yield (
                    name,
                    rule.id,
                    rule.title,
                    rule.priority,
                    getattr(rule, "metric", None),
                    param,
                    float(DEFAULTS[param] if default is None else default),
                )


def publish_protocols(conn: psycopg.Connection, protocols: Mapping[str, Protocol]) -> int:
    """Replace the published parameters of these protocols in one transaction."""
    rows = list(param_rows(protocols))
    with conn.transaction():
        conn.execute("DELETE FROM protocol_params WHERE protocol = ANY(%s)", (list(protocols),))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO protocol_params (protocol, rule_id, rule_title, priority, metric,"
                " param, default_value) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
    return len(rows)
