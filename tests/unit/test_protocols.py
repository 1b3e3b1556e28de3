"""Protocol files: the shipped ones validate, and a mistake is reported with its file,
line and field."""

from __future__ import annotations

import pytest

from alerts.protocol import ProtocolError, builtin_protocols, parse_protocol

GOOD = """\
protocol: test_protocol
title: Test
auto_resolve_after_s: 900
escalation:
  tiers: [coordinator, physician]
  after_s: {high: 300, medium: 1800, low: 14400}
rules:
  - id: spo2_low
    kind: sustained
    title: SpO2 low
    metric: spo2_pct
    direction: below
    threshold: 92
    duration_s: 600
    max_gap_s: 180
    priority: medium
"""


def test_shipped_protocols_validate() -> None:
    protocols = builtin_protocols()
    assert {"cardiac_surgery", "orthopaedic_surgery", "digestive_surgery"} <= set(protocols)
    for p in protocols.values():
        kinds = {r.kind for r in p.rules}
        assert {"sustained", "news2", "missing", "gateway_offline", "battery"} <= kinds
    assert "weight_gain" in {r.id for r in protocols["cardiac_surgery"].rules}


def test_good_file_parses() -> None:
    p = parse_protocol(GOOD, "test.yaml")
    assert p.rule("spo2_low").priority == "medium"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("threshold: 92", "threshold: ninety"), "test.yaml:13: rules.0.sustained.threshold:"),
        (
            ("metric: spo2_pct", "metric: spo2"),
            "test.yaml:8: rules.0.sustained: Value error, unknown metric 'spo2'",
        ),
        (("priority: medium", "priority: urgent"), "test.yaml:16: rules.0.sustained.priority:"),
        (("kind: sustained", "kind: magic"), "test.yaml:8: rules.0: Input tag 'magic'"),
        (("tiers: [coordinator, physician]", "tiers: []"), "test.yaml:5: escalation.tiers:"),
        (
            ("duration_s: 600", "duration_s: 600\n    colour: red"),
            "test.yaml:15: rules.0.sustained.colour: Extra inputs",
        ),
    ],
)
def test_errors_name_file_line_and_field(change: tuple[str, str], expected: str) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_protocol(GOOD.replace(*change), "test.yaml")
    assert expected in str(err.value)


def test_duplicate_rule_ids_and_bad_yaml() -> None:
    doubled = GOOD + GOOD[GOOD.index("  - id: spo2_low") :]
    with pytest.raises(ProtocolError, match="appears twice"):
        parse_protocol(doubled, "d.yaml")
    with pytest.raises(ProtocolError, match=r"d\.yaml: not valid YAML"):
        parse_protocol("rules: [", "d.yaml")


def test_a_spot_check_rule_must_be_one_the_patient_can_be_asked_to_repeat() -> None:
    """A ``confirmed`` rule asks the patient's phone for a re-measurement
    (alerts/remeasure.py): a metric the patient app has no words for is refused."""
    confirmed = GOOD + (
        "  - {id: glucose_high, kind: confirmed, title: Glucose high, metric: glucose_mmol_l,"
        " direction: above, threshold: 15, run_s: 600, max_gap_s: 3600, freshness_s: 3600,"
        " deadline_s: 1800, priority: medium}\n"
    )
    with pytest.raises(ProtocolError, match="cannot ask to measure 'glucose_mmol_l' again"):
        parse_protocol(confirmed, "c.yaml")
    accepted = parse_protocol(confirmed.replace("glucose_mmol_l", "weight_kg"), "c.yaml")
    assert accepted.rule("glucose_high").kind == "confirmed"
