"""The alert lifecycle with an injected clock: opening, flapping, latching, auto-resolve,
priority raise and escalation timing."""

from __future__ import annotations

from dataclasses import replace

from alerts.lifecycle import (
    AutoResolve,
    ConditionCleared,
    ConditionReturned,
    Escalate,
    Finding,
    Open,
    OpenAlert,
    Policy,
    RaisePriority,
    plan,
)

MIN = 60_000
POLICY = {
    7: Policy(
        auto_resolve_after_s=900,
        escalate_after_s={"high": 300, "medium": 1800, "low": 14400},
        tiers=3,
    )
}


def finding(firing: bool, priority: str = "medium") -> Finding:
    return Finding(7, "spo2_low", firing, priority, "clinical", {"value": 90.0})  # type: ignore[arg-type]


def alert(**over: object) -> OpenAlert:
    base = OpenAlert(
        alert_id=1,
        patient_id=7,
        rule_id="spo2_low",
        priority="medium",
        state="active",
        opened_ms=0,
        condition_cleared_ms=None,
        escalation_tier=0,
        escalated_ms=None,
    )
    return replace(base, **over)  # type: ignore[arg-type]


def test_a_firing_rule_opens_one_alert_and_no_second_while_open() -> None:
    assert plan([finding(True)], [], 0, POLICY) == [Open(finding(True))]
    assert plan([finding(True)], [alert()], MIN, POLICY) == []


def test_quiet_rule_with_nothing_open_does_nothing() -> None:
    assert plan([finding(False)], [], 0, POLICY) == []


def test_flapping_keeps_one_alert_and_restarts_the_clear_timer() -> None:
    a = alert()
    assert plan([finding(False)], [a], 1 * MIN, POLICY) == [ConditionCleared(a)]
    cleared = alert(condition_cleared_ms=1 * MIN)
    assert plan([finding(True)], [cleared], 2 * MIN, POLICY) == [
        ConditionReturned(cleared, finding(True))
    ]
    # 14 minutes after clearing: still open, nothing to do
    assert plan([finding(False)], [cleared], 15 * MIN - 1, POLICY) == []


def test_auto_resolve_after_the_condition_stayed_clear() -> None:
    cleared = alert(condition_cleared_ms=0)
    assert plan([finding(False)], [cleared], 15 * MIN, POLICY) == [AutoResolve(cleared)]


def test_high_priority_latches_until_acknowledged() -> None:
    latched = alert(priority="high", condition_cleared_ms=0, escalation_tier=2)
    assert plan([finding(False, "high")], [latched], 600 * MIN, POLICY) == []
    acked = replace(latched, state="acknowledged")
    assert plan([finding(False, "high")], [acked], 600 * MIN, POLICY) == [AutoResolve(acked)]


def test_priority_is_raised_never_lowered() -> None:
    a = alert()
    assert plan([finding(True, "high")], [a], MIN, POLICY) == [
        RaisePriority(a, finding(True, "high"))
    ]
    assert plan([finding(True, "low")], [a], MIN, POLICY) == []


def test_escalation_timing_per_tier() -> None:
    a = alert()  # medium: 30 min per tier
    assert plan([], [a], 30 * MIN - 1, POLICY) == []
    assert plan([], [a], 30 * MIN, POLICY) == [Escalate(a, 1)]
    tier1 = alert(escalation_tier=1, escalated_ms=30 * MIN)
    assert plan([], [tier1], 60 * MIN - 1, POLICY) == []
    assert plan([], [tier1], 60 * MIN, POLICY) == [Escalate(tier1, 2)]
    last = alert(escalation_tier=2, escalated_ms=60 * MIN)
    assert plan([], [last], 999 * MIN, POLICY) == []  # no tier beyond the last


def test_no_escalation_once_acknowledged_or_cleared() -> None:
    assert plan([], [alert(state="acknowledged")], 999 * MIN, POLICY) == []
    assert plan([], [alert(condition_cleared_ms=MIN)], 31 * MIN, POLICY) == []
    high = alert(priority="high", condition_cleared_ms=MIN)
    assert plan([], [high], 5 * MIN, POLICY) == [Escalate(high, 1)]  # latched: still escalates


def test_auto_resolved_alert_is_not_escalated_in_the_same_round() -> None:
    cleared = alert(condition_cleared_ms=0)
    assert plan([finding(False)], [cleared], 60 * MIN, POLICY) == [AutoResolve(cleared)]


def test_a_late_alert_of_any_priority_latches_and_escalates_until_acknowledged() -> None:
    """Opened for an episode that was over before its readings arrived: cleared from the
    start, yet nobody has seen it."""
    late = alert(priority="low", late=True, condition_cleared_ms=-60 * MIN, opened_ms=0)
    assert plan([finding(False, "low")], [late], 239 * MIN, POLICY) == []
    assert plan([finding(False, "low")], [late], 240 * MIN, POLICY) == [Escalate(late, 1)]
    acked = replace(late, state="acknowledged")
    assert plan([finding(False, "low")], [acked], 240 * MIN, POLICY) == [AutoResolve(acked)]


def test_a_condition_clearing_this_round_stops_the_escalation_due_this_round() -> None:
    """Seen in the field: one round recorded both 'condition_cleared' and an escalation
    of a medium alert (not latched), the escalation planned from the alert as it was read
    before the clearing."""
    a = alert(escalation_tier=1, escalated_ms=0)  # tier 2 due at 30 min
    assert plan([finding(False)], [a], 30 * MIN, POLICY) == [ConditionCleared(a)]
    high = alert(priority="high")  # latched: clears and still escalates
    assert plan([finding(False, "high")], [high], 5 * MIN, POLICY) == [
        ConditionCleared(high),
        Escalate(high, 1),
    ]


def test_a_condition_returning_this_round_escalates_when_due() -> None:
    a = alert(condition_cleared_ms=20 * MIN)
    assert plan([finding(True)], [a], 30 * MIN, POLICY) == [
        ConditionReturned(a, finding(True)),
        Escalate(a, 1),
    ]


def test_missing_data_is_one_alert_per_day_window_not_one_per_forgotten_check() -> None:
    """``no_spo2`` clears for a day (``resolve_after_s``): a patient who forgets another
    spot check the same afternoon continues the acknowledged alert (no new notification),
    while another rule of the protocol resolves after its hour."""
    policy = {7: replace(POLICY[7], resolve_after_s={"no_spo2": 86_400})}
    silent = Finding(7, "no_spo2", True, "low", "technical", {"silent_s": 30_000.0})
    quiet = replace(silent, firing=False)
    seen = alert(rule_id="no_spo2", priority="low", state="acknowledged", condition_cleared_ms=0)
    assert plan([quiet], [seen], 2 * 60 * MIN, policy) == []  # cleared 2 h ago: stays
    assert plan([silent], [seen], 6 * 60 * MIN, policy) == [ConditionReturned(seen, silent)]
    assert plan([quiet], [seen], 24 * 60 * MIN, policy) == [AutoResolve(seen)]
    other = alert(condition_cleared_ms=0)
    assert plan([finding(False)], [other], 15 * MIN, policy) == [AutoResolve(other)]


def test_the_shipped_protocols_keep_missing_data_alerts_for_days() -> None:
    from alerts.protocol import builtin_protocols

    for proto in builtin_protocols().values():
        policy = Policy.of(proto)
        assert policy.resolve_after_s["no_spo2"] == 3 * 86_400
        assert policy.resolve_after_s["battery_low"] == 86_400
        assert "spo2_low" not in policy.resolve_after_s  # clinical: the protocol's hour
        assert policy.auto_resolve_after_s == 3600
