"""Alert lifecycle, after IEC 60601-1-8, as a pure function from (what the rules found,
what is open, now) to actions; the engine applies them in the database.

- One open alert per patient and rule. A condition that clears and returns within
  ``auto_resolve_after_s`` continues the same alert: a flapping signal never reopens one
  every minute.
- A condition cleared for ``auto_resolve_after_s`` (or the rule's own
  ``resolve_after_s``) resolves its alert automatically,
  except a high-priority alert nobody has acknowledged: it latches until a person does.
  So does an alert opened late, for an episode that ended before its readings arrived
  (``late``), whatever its priority: nobody has seen it yet.
- An unacknowledged alert escalates to the next tier after its priority's delay, and
  again after the same delay at each tier, until the last tier; a cleared condition stops
  the escalation, except for a latched alert (judged on the alert as the round leaves it:
  a condition that clears in this round escalates no further, one that returns may).
- A rule that now finds a higher priority raises the open alert's priority (and notifies
  again); priorities never go down by themselves.
- One missing-data alert per patient ("the kit is not being used": the team calls once).
  While a missing-data alert of the patient is open, any other missing metric joins it
  (``also_missing``) instead of opening its own; the rule that opened it keeps it. If its
  own metric comes back while another is still missing, it stays firing, naming what is
  still missing (``still_missing``), until nothing is: it neither resolves nor hands over
  to a new alert (which would page again for a patient the team already called).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from alerts.protocol import Protocol

Priority = Literal["high", "medium", "low"]
RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3}


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's verdict for one patient at one evaluation."""

    patient_id: int
    rule_id: str
    firing: bool
    priority: Priority
    category: Literal["clinical", "technical"]
    evidence: Mapping[str, Any] = field(default_factory=dict)
    onset_ms: int | None = None


@dataclass(frozen=True, slots=True)
class OpenAlert:
    alert_id: int
    patient_id: int
    rule_id: str
    priority: Priority
    state: Literal["active", "acknowledged"]
    opened_ms: int
    condition_cleared_ms: int | None
    escalation_tier: int
    escalated_ms: int | None
    late: bool = False
    # a missing-data alert's ``also_missing`` and ``still_missing`` evidence as stored
    also_missing: str | None = None
    still_missing: str | None = None
    # a spot reading's alert: whether it still awaits its re-measurement, as stored
    confirmation_requested: bool | None = None

    @property
    def latched(self) -> bool:
        """Stays active, and escalates, until a person acknowledges it."""
        return self.state == "active" and (self.priority == "high" or self.late)


@dataclass(frozen=True, slots=True)
class Policy:
    auto_resolve_after_s: int
    escalate_after_s: Mapping[str, int]
    tiers: int
    # per rule id, a clear time other than ``auto_resolve_after_s`` (e.g. missing data:
    # one alert per day window, not one per forgotten measurement)
    resolve_after_s: Mapping[str, int] = field(default_factory=dict)
    # missing-data rule id -> its metric, in protocol order (one such alert per patient)
    missing_metrics: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, proto: Protocol) -> Policy:
        """A protocol's policy."""
        return cls(
            proto.auto_resolve_after_s,
            {str(k): v for k, v in proto.escalation.after_s.items()},
            len(proto.escalation.tiers),
            {r.id: r.resolve_after_s for r in proto.rules if r.resolve_after_s is not None},
            {r.id: r.metric for r in proto.rules if r.kind == "missing"},
        )


@dataclass(frozen=True, slots=True)
class Open:
    finding: Finding


@dataclass(frozen=True, slots=True)
class ConditionCleared:
    alert: OpenAlert


@dataclass(frozen=True, slots=True)
class ConditionReturned:
    alert: OpenAlert
    finding: Finding


@dataclass(frozen=True, slots=True)
class RaisePriority:
    alert: OpenAlert
    finding: Finding


@dataclass(frozen=True, slots=True)
class EvidenceChanged:
    """A firing alert whose evidence changed what it says: a missing-data alert's list of
    missing metrics (the page names every missing measurement), a spot reading confirmed
    without a change of priority; its evidence is updated. ``notify``: a metric joined an
    alert the team had acknowledged (a call about the kit already made): they hear of it
    again, as of a priority raised."""

    alert: OpenAlert
    finding: Finding
    notify: bool = False


@dataclass(frozen=True, slots=True)
class AutoResolve:
    alert: OpenAlert


@dataclass(frozen=True, slots=True)
class Escalate:
    alert: OpenAlert
    tier: int


Action = (
    Open
    | ConditionCleared
    | ConditionReturned
    | RaisePriority
    | EvidenceChanged
    | AutoResolve
    | Escalate
)


def plan(
    findings: Iterable[Finding],
    open_alerts: Iterable[OpenAlert],
    now_ms: int,
    policies: Mapping[int, Policy],
) -> list[Action]:
    """Actions for the evaluated (patient, rule) pairs and escalations for every open alert.

    ``policies`` maps a patient id to its protocol's policy.
    """
    by_key = {(a.patient_id, a.rule_id): a for a in open_alerts}
    findings = fold_missing(list(findings), by_key.values(), policies)
    actions: list[Action] = []
    for f in findings:
        alert = by_key.get((f.patient_id, f.rule_id))
        policy = policies[f.patient_id]
        if alert is None:
            if f.firing:
                actions.append(Open(f))
            continue
        if f.firing:
            if alert.condition_cleared_ms is not None:
                actions.append(ConditionReturned(alert, f))
            if RANK[f.priority] > RANK[alert.priority]:
                actions.append(RaisePriority(alert, f))
            elif alert.condition_cleared_ms is None and _evidence_moved(f, alert, policy):
                grew = missing_named(
                    f.rule_id,
                    f.evidence.get("also_missing"),
                    f.evidence.get("still_missing"),
                    policy,
                )
                grew -= missing_named(
                    alert.rule_id, alert.also_missing, alert.still_missing, policy
                )
                actions.append(EvidenceChanged(alert, f, bool(grew) and alert.state != "active"))
            continue
        if alert.condition_cleared_ms is None:
            actions.append(ConditionCleared(alert))
        elif _may_auto_resolve(alert, now_ms, policy):
            actions.append(AutoResolve(alert))
    resolved = {a.alert.alert_id for a in actions if isinstance(a, AutoResolve)}
    cleared: dict[int, int | None] = {
        a.alert.alert_id: now_ms for a in actions if isinstance(a, ConditionCleared)
    }
    cleared |= {a.alert.alert_id: None for a in actions if isinstance(a, ConditionReturned)}
    for alert in by_key.values():
        if alert.alert_id in resolved:
            continue
        # judge the escalation on the alert as this round leaves it, not as it was read
        as_left = (
            replace(alert, condition_cleared_ms=cleared[alert.alert_id])
            if alert.alert_id in cleared
            else alert
        )
        tier = _due_tier(as_left, now_ms, policies.get(alert.patient_id))
        if tier is not None:
            actions.append(Escalate(alert, tier))
    return actions


def fold_missing(
    findings: list[Finding], open_alerts: Iterable[OpenAlert], policies: Mapping[int, Policy]
) -> list[Finding]:
    """One missing-data alert per patient. The lead is the patient's open missing-data
    alert (the earliest opened), else the firing rule whose silence began first (protocol
    order on a tie). Every other firing missing rule is folded into it: quiet itself, its
    metric in the lead's ``also_missing``; the lead fires while any of them does."""
    leads: dict[int, OpenAlert] = {}
    for a in sorted(open_alerts, key=lambda a: (a.opened_ms, a.alert_id)):
        policy = policies.get(a.patient_id)
        if policy is not None and a.rule_id in policy.missing_metrics:
            leads.setdefault(a.patient_id, a)
    groups: dict[int, list[int]] = {}  # patient -> indices of its missing-data findings
    for i, f in enumerate(findings):
        policy = policies.get(f.patient_id)
        if policy is not None and f.rule_id in policy.missing_metrics:
            groups.setdefault(f.patient_id, []).append(i)
    out = list(findings)
    for pid, idx in groups.items():
        metrics = policies[pid].missing_metrics
        order = list(metrics)
        firing = sorted(
            (i for i in idx if findings[i].firing),
            key=lambda i: (
                findings[i].onset_ms if findings[i].onset_ms is not None else 2**63,
                order.index(findings[i].rule_id),
            ),
        )
        if not firing:
            continue
        lead_alert = leads.get(pid)
        lead_rule = lead_alert.rule_id if lead_alert else findings[firing[0]].rule_id
        lead = next((i for i in idx if findings[i].rule_id == lead_rule), None)
        others = [i for i in firing if i != lead]
        if lead is None or not others:
            continue
        f = findings[lead]
        named = [m for m in str(f.evidence.get("also_missing") or "").split(",") if m]
        for i in others:
            o = findings[i]
            named += [metrics[o.rule_id]]
            named += [m for m in str(o.evidence.get("also_missing") or "").split(",") if m]
            out[i] = replace(o, firing=False, evidence={}, onset_ms=None)
        unique = ",".join(m for m in dict.fromkeys(named) if m != metrics[lead_rule])
        top = max([f, *(findings[i] for i in others)], key=lambda x: RANK[x.priority])
        out[lead] = replace(
            f,
            firing=True,
            priority=top.priority,
            # its own metric back: the alert names only what is still missing
            evidence={**f.evidence, "also_missing": unique}
            if f.firing
            else {"still_missing": unique},
            onset_ms=f.onset_ms if f.firing else findings[others[0]].onset_ms,
        )
    return out


def _evidence_moved(f: Finding, alert: OpenAlert, policy: Policy) -> bool:
    """Whether a firing alert's stored evidence no longer says what matters: the missing
    metrics it names, or a spot reading confirmed at the priority it had while awaiting
    its re-measurement (no raise would write it)."""
    if f.rule_id in policy.missing_metrics:
        now = (f.evidence.get("also_missing"), f.evidence.get("still_missing"))
        return now != (alert.also_missing, alert.still_missing)
    asked = f.evidence.get("confirmation_requested")
    return (
        asked is not None
        and alert.confirmation_requested is not None
        and bool(asked) != alert.confirmation_requested
    )


def _named(*lists: object) -> set[str]:
    return {m for x in lists if x for m in str(x).split(",") if m}


def missing_named(rule_id: str, also: object, still: object, policy: Policy) -> set[str]:
    """The metrics a missing-data alert says are missing: those its evidence names, and
    its own rule's metric unless the evidence names only what is still missing (its own
    metric back). A lead's metric falling silent again is then news like any other."""
    named = _named(also, still)
    own = policy.missing_metrics.get(rule_id)
    if own is not None and not still:
        named.add(own)
    return named


def _may_auto_resolve(alert: OpenAlert, now_ms: int, policy: Policy) -> bool:
    assert alert.condition_cleared_ms is not None
    if alert.latched:
        return False  # until a person acknowledges it
    after_s = policy.resolve_after_s.get(alert.rule_id, policy.auto_resolve_after_s)
    return now_ms - alert.condition_cleared_ms >= after_s * 1000


def _due_tier(alert: OpenAlert, now_ms: int, policy: Policy | None) -> int | None:
    if policy is None or alert.state != "active":
        return None
    if alert.condition_cleared_ms is not None and not alert.latched:
        return None  # the condition is gone; only a latched alert still needs a person
    if alert.escalation_tier + 1 >= policy.tiers:
        return None
    since = alert.escalated_ms if alert.escalated_ms is not None else alert.opened_ms
    if now_ms - since >= policy.escalate_after_s[alert.priority] * 1000:
        return alert.escalation_tier + 1
    return None
