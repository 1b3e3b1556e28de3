"""The alert lifecycle with an injected clock: opening, flapping, latching, auto-resolve,
priority raise and escalation timing."""

from __future__ import annotations

from dataclasses import replace

from alerts.lifecycle import (
    AutoResolve,
    ConditionCleared,
    ConditionReturned,
    Escalate,
    EvidenceChanged,
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


MISSING = {
    7: replace(
        POLICY[7],
        resolve_after_s={"no_spo2": 259_200, "no_bp": 259_200, "no_temp": 259_200},
        missing_metrics={"no_spo2": "spo2_pct", "no_bp": "bp_systolic_mmhg", "no_temp": "temp_c"},
    )
}


def silence(rule: str, firing: bool, onset_ms: int | None = 0, **evidence: object) -> Finding:
    return Finding(
        7,
        rule,
        firing,
        "low",
        "technical",
        {"silent_s": 1.0, **evidence},
        onset_ms if firing else None,
    )


def test_a_second_missing_metric_joins_the_open_missing_data_alert() -> None:
    """'The kit is not being used': the team calls once. A blood pressure missing while the
    patient's SpO2 alert is open is named in that alert (``also_missing``, the evidence
    updated without a notification), not a second alert; the lead keeps firing while its
    own metric is back and the pressure still missing (no resolve, no new alert; the
    evidence then names only what is still missing), and clears once nothing is."""
    spo2 = alert(rule_id="no_spo2", priority="low")
    both = [silence("no_spo2", True), silence("no_bp", True, 5 * MIN)]
    actions = plan(both, [spo2], 60 * MIN, MISSING)
    joined = replace(both[0], evidence={"silent_s": 1.0, "also_missing": "bp_systolic_mmhg"})
    assert actions == [EvidenceChanged(spo2, joined)]
    # the team had acknowledged it (called about the kit): they hear of the new gap
    seen = replace(spo2, state="acknowledged")
    assert plan(both, [seen], 60 * MIN, MISSING) == [EvidenceChanged(seen, joined, notify=True)]
    spo2 = replace(spo2, also_missing="bp_systolic_mmhg")
    assert plan(both, [spo2], 61 * MIN, MISSING) == []  # stored: nothing to write again
    # the SpO2 comes back, the pressure is still missing: the same alert goes on
    spo2_back = [silence("no_spo2", False), silence("no_bp", True, 5 * MIN)]
    still = Finding(
        7, "no_spo2", True, "low", "technical", {"still_missing": "bp_systolic_mmhg"}, 5 * MIN
    )
    assert plan(spo2_back, [spo2], 90 * MIN, MISSING) == [EvidenceChanged(spo2, still)]
    spo2 = replace(spo2, also_missing=None, still_missing="bp_systolic_mmhg")
    assert plan(spo2_back, [spo2], 91 * MIN, MISSING) == []
    # nothing missing any more: the lead clears (and resolves after its own time)
    quiet = [silence("no_spo2", False), silence("no_bp", False)]
    assert plan(quiet, [spo2], 120 * MIN, MISSING) == [ConditionCleared(spo2)]
    # a metric missing again while the alert awaits its resolution continues it
    cleared = replace(spo2, condition_cleared_ms=120 * MIN)
    temp = [silence("no_spo2", False), silence("no_bp", False), silence("no_temp", True, 3 * MIN)]
    [returned] = plan(temp, [cleared], 180 * MIN, MISSING)
    assert isinstance(returned, ConditionReturned)
    assert returned.alert == cleared
    assert returned.finding.rule_id == "no_spo2"
    assert returned.finding.firing
    assert returned.finding.evidence == {"still_missing": "temp_c"}


def test_the_leads_own_metric_missing_again_is_news_to_a_team_that_acknowledged() -> None:
    """The SpO2 alert leads, its own metric came back, the pressure is still missing; the
    team acknowledged it. Then the oximeter falls silent again (the patient gave up on
    every device): the evidence names the SpO2 again, and the team hears of it, as of
    any metric that joins (seed 1: a patient who stopped measuring was never heard of,
    the alert already open with only the pressure named)."""
    seen = alert(rule_id="no_spo2", priority="low", state="acknowledged")
    seen = replace(seen, still_missing="bp_systolic_mmhg")
    again = [silence("no_spo2", True), silence("no_bp", True, 5 * MIN)]
    joined = replace(again[0], evidence={"silent_s": 1.0, "also_missing": "bp_systolic_mmhg"})
    assert plan(again, [seen], 200 * MIN, MISSING) == [EvidenceChanged(seen, joined, notify=True)]
    # the SpO2 back again: the alert says what is still missing, nothing new to tell
    back = [silence("no_spo2", False), silence("no_bp", True, 5 * MIN)]
    was_all = replace(seen, still_missing=None, also_missing="bp_systolic_mmhg")
    [moved] = plan(back, [was_all], 260 * MIN, MISSING)
    assert isinstance(moved, EvidenceChanged)
    assert moved.finding.evidence == {"still_missing": "bp_systolic_mmhg"}
    assert not moved.notify


def test_missing_metrics_without_an_open_alert_open_one_led_by_the_longest_silence() -> None:
    """Two rules firing in the same round open one alert: the one silent longest (the
    first to fire) leads, naming the other and the reminder-folded ones; the alert takes
    the highest priority among them."""
    raised = replace(silence("no_spo2", True, 30 * MIN), priority="medium")
    bp = silence("no_bp", True, 10 * MIN, also_missing="temp_c")
    [opened] = plan([raised, bp, silence("no_temp", False)], [], 60 * MIN, MISSING)
    assert isinstance(opened, Open)
    assert opened.finding.rule_id == "no_bp"
    assert opened.finding.priority == "medium"
    assert opened.finding.evidence["also_missing"] == "temp_c,spo2_pct"
    assert opened.finding.onset_ms == 10 * MIN


def test_a_folded_rule_never_opens_nor_keeps_its_own_alert() -> None:
    """Two missing-data alerts open (opened before this rule, or by two engines): the
    earliest leads; the other's condition clears and it resolves in its time, whatever
    its metric does, so it cannot flap the lead."""
    bp = alert(alert_id=1, rule_id="no_bp", priority="low", opened_ms=0)
    temp = alert(alert_id=2, rule_id="no_temp", priority="low", opened_ms=MIN)
    found = [silence("no_bp", True), silence("no_temp", True)]
    joined = replace(found[0], evidence={"silent_s": 1.0, "also_missing": "temp_c"})
    assert plan(found, [temp, bp], 60 * MIN, MISSING) == [
        EvidenceChanged(bp, joined),
        ConditionCleared(temp),
    ]


def test_a_spot_reading_confirmed_at_the_same_priority_updates_the_alert() -> None:
    """A low-priority rule asks for a re-measurement at low priority too: no raise would
    write its confirmation, so the evidence is updated (the page stops asking)."""
    asked = alert(priority="low", confirmation_requested=True)
    confirmed = replace(finding(True, "low"), evidence={"confirmation_requested": False})
    assert plan([confirmed], [asked], MIN, POLICY) == [EvidenceChanged(asked, confirmed)]
    done = replace(asked, confirmation_requested=False)
    assert plan([confirmed], [done], 2 * MIN, POLICY) == []
