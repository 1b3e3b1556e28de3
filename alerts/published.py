"""Publishing the loaded protocols' overridable parameters to ``protocol_params``, so the
API offers (and accepts) only the overrides this engine applies."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import psycopg

from alerts.protocol import Protocol, RiseRule, SustainedRule, TrendRule

# the rule parameters ``evaluate`` reads through per-patient overrides
OVERRIDABLE = {SustainedRule: "threshold", TrendRule: "slope_per_h_above", RiseRule: "rise_above"}


def _rows(
    protocols: Mapping[str, Protocol],
) -> Iterator[tuple[str, str, str, str, str, str, float]]:
    for name, proto in sorted(protocols.items()):
        for rule in proto.rules:
            param = OVERRIDABLE.get(type(rule))
            if param is None:
                continue
            assert isinstance(rule, SustainedRule | TrendRule | RiseRule)
            yield (
                name,
                rule.id,
                rule.title,
                rule.priority,
                rule.metric,
                param,
                float(getattr(rule, param)),
            )


def publish_protocols(conn: psycopg.Connection, protocols: Mapping[str, Protocol]) -> int:
    """Replace the published parameters of these protocols in one transaction."""
    rows = list(_rows(protocols))
    with conn.transaction():
        conn.execute("DELETE FROM protocol_params WHERE protocol = ANY(%s)", (list(protocols),))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO protocol_params (protocol, rule_id, rule_title, priority, metric,"
                " param, default_value) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
    return len(rows)
