"""Surgical protocols: which rules watch a patient, with which parameters, in YAML files.

A protocol file is validated whole when loaded; an error names the file, the line and the
field, so a clinician editing thresholds sees exactly what to fix. Per-patient overrides
(set by a clinician, audited) replace a rule's numeric parameters for one patient.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from alerts.reported_protocol import (
    CalfPulseRule,
    ReportedHighRule,
    ReportedNewRule,
    ReportedRiseRule,
    WoundInfectionRule,
)
from vitals.catalogue import BY_NAME
from vitals.remeasure import REQUEST_KIND

Priority = Literal["high", "medium", "low"]
Direction = Literal["above", "below", "at_or_above", "at_or_below"]
RuleId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{2,47}$")]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: RuleId
    priority: Priority
    title: str = Field(min_length=3, max_length=120)
    # how long the condition must stay clear before this rule's alert resolves (the
    # protocol's ``auto_resolve_after_s`` when None); a silence that comes back within
    # it continues the same alert, without a new notification
    resolve_after_s: Annotated[int, Field(ge=60, le=7 * 86_400)] | None = None

    @property
    def category(self) -> Literal["clinical", "technical"]:
        return "clinical"


class _MetricRule(_Rule):
    metric: str

    @model_validator(mode="after")
    def _known_metric(self) -> _MetricRule:
        if self.metric not in BY_NAME:
            raise ValueError(f"unknown metric {self.metric!r}")
        return self


class NightSpec(BaseModel):
    """At night (the patient's local time), the limit follows the patient's own nights:
    it is the day limit or, lower, ``below_usual_by`` under the median of their earlier
    nights (``unknown_offset`` under the day limit while no earlier night is known), and
    the condition must last ``duration_s``. Healthy older people, sleep apnoea and obesity
    hypoventilation dip at night without deteriorating; a fall below their own nights
    still fires."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_h: Annotated[float, Field(ge=0, lt=24)] = 22.0
    end_h: Annotated[float, Field(ge=0, lt=24)] = 7.0
    duration_s: Annotated[int, Field(ge=60, le=86_400)]
    below_usual_by: Annotated[float, Field(ge=0)]
    unknown_offset: Annotated[float, Field(ge=0)] = 0.0
    min_usual_hours: Annotated[int, Field(ge=1)] = 4
    # people go to bed between about 21:00 and 01:00 and rise between 05:00 and 10:00:
    # while the overnight oximeter is still worn (it streams), the night reaches this
    # many hours beyond start_h and end_h (a patient asleep at 08:00 is still asleep)
    worn_extends_h: Annotated[float, Field(ge=0, le=4)] = 0.0


class UsualSpec(BaseModel):
    """By day too, the limit stays ``below_by`` under the patient's usual value (median
    of their first 24 h after discharge, or of their metric's ``usual_s``: see
    alerts/usual.py) when that is lower, but never beyond ``floor``.
    For a limit above (a temperature), the same the other way: ``below_by`` over a usual
    that runs high, never beyond ``floor`` (a ceiling)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    below_by: Annotated[float, Field(ge=0)]
    floor: float


class SustainedRule(_MetricRule):
    kind: Literal["sustained"]
    direction: Direction
    threshold: float
    # the limit for patients on NEWS2 SpO2 scale 2 (hypercapnic respiratory failure,
    # target 88-92%): a COPD patient's usual saturation is not a fall
    scale2_threshold: float | None = None
    duration_s: Annotated[int, Field(ge=60, le=86_400)]
    max_gap_s: Annotated[int, Field(ge=60, le=86_400)]
    # each reading taken as the median over this span ending at it (0: as it is)
    settle_s: Annotated[int, Field(ge=0, le=3600)] = 0
    night: NightSpec | None = None
    usual: UsualSpec | None = None


class _ConfirmParams(BaseModel):
    """How a spot reading asks for, and gets, its confirmation (see rules.confirmed)."""

    run_s: Annotated[int, Field(ge=60, le=86_400)]
    max_gap_s: Annotated[int, Field(ge=60, le=86_400)]
    freshness_s: Annotated[int, Field(ge=60, le=86_400)]
    spot_gap_s: Annotated[int, Field(ge=60, le=86_400)] = 600
    remeasure_after_s: Annotated[int, Field(ge=60, le=86_400)] = 120
    deadline_s: Annotated[int, Field(ge=60, le=86_400)]
    # priority while a single spot reading awaits its confirmation
    requested_priority: Priority = "low"
    # each reading taken as the median over this span ending at it (0: as it is)
    settle_s: Annotated[int, Field(ge=0, le=3600)] = 0


class ConfirmedRule(_MetricRule, _ConfirmParams):
    """A limit that works on continuous data and on spot checks (confirmation asked)."""

    kind: Literal["confirmed"]
    direction: Direction
    threshold: float
    scale2_threshold: float | None = None
    usual: UsualSpec | None = None


class RelativeRule(_MetricRule, _ConfirmParams):
    """A change from the patient's own usual value (entered by the hospital at discharge,
    and the median of their first ``usual_s`` of readings: of the two, the one the change
    departs from soonest): beyond both ``change_abs`` and ``change_pct`` percent of it,
    confirmed as a ``confirmed`` rule is."""

    kind: Literal["relative"]
    direction: Literal["above", "below"]
    change_abs: Annotated[float, Field(gt=0)]
    change_pct: Annotated[float, Field(ge=0, lt=100)]
    usual_s: Annotated[int, Field(ge=3600, le=7 * 86_400)] = 86_400
    min_usual_points: Annotated[int, Field(ge=1)] = 2

    @model_validator(mode="after")
    def _usual_known(self) -> RelativeRule:
        if self.metric not in USUAL_FIELDS and self.metric not in FIRST_DAY_USUAL:
            raise ValueError(f"no usual value is kept for {self.metric!r}")
        return self


# which PatientContext field holds the hospital's value of a metric
USUAL_FIELDS = {
    "bp_systolic_mmhg": "discharge_sbp_mmhg",
    "heart_rate_bpm": "discharge_hr_bpm",
    "weight_kg": "discharge_weight_kg",
}
# metrics whose usual value is only the median of the first day's readings (the hospital
# enters none): the temperature, for a rise over the patient's own usual (High et al. 2009)
FIRST_DAY_USUAL = frozenset({"temp_c"})


class FallRule(_MetricRule):
    """The latest reading below the highest of the trailing window (e.g. weight loss in
    dehydration), by ``fall_above`` or ``fall_pct_above`` percent, whichever is less."""

    kind: Literal["fall"]
    window_s: Annotated[int, Field(ge=3600, le=14 * 86_400)]
    fall_above: Annotated[float, Field(gt=0)]
    fall_pct_above: Annotated[float, Field(gt=0, lt=50)] | None = None


class SepsisScreenRule(_Rule):
    """Fever (or hypothermia) and a raised pulse from spot checks, without a respiratory
    rate (most kits): the two SIRS signs a home kit measures, the pulse judged against
    the patient's own usual pulse when known."""

    kind: Literal["sepsis_screen"]
    temp_at_or_above: float
    temp_at_or_below: float
    hr_above: float
    hr_rise_above_usual: Annotated[float, Field(ge=0)]
    freshness_s: Annotated[int, Field(ge=600, le=86_400)]
    # the low-temperature limit no closer than ``below_by`` under the patient's usual
    # temperature (alerts/usual.py) when that runs cold, never under ``floor``:
    # a thermometer that reads a patient at 35.9 makes 35.5 their ordinary morning
    cold_usual: UsualSpec | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("temp_c", "heart_rate_bpm")


class RhythmRule(_Rule):
    """Atrial fibrillation suspected: the patch's beat-to-beat irregularity index above
    ``irregularity_above`` for ``duration_s``, or at least ``min_flagged`` cuff readings
    flagged "irregular pulse" within ``flag_window_s``. Priority by the rate: ``priority``
    when the pulse is above ``fast_hr_above``, ``slow_priority`` otherwise."""

    kind: Literal["rhythm"]
    irregularity_above: Annotated[float, Field(gt=0, lt=2)]
    duration_s: Annotated[int, Field(ge=60, le=86_400)]
    max_gap_s: Annotated[int, Field(ge=60, le=86_400)]
    min_flagged: Annotated[int, Field(ge=1)]
    flag_window_s: Annotated[int, Field(ge=600, le=86_400)]
    fast_hr_above: float
    slow_priority: Priority

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("rr_irregularity", "heart_rate_bpm")


class News2Rule(_Rule):
    kind: Literal["news2"]
    freshness_s: Annotated[int, Field(ge=600, le=86_400)]
    # continuous readings are taken as their median over this span (artifacts settle)
    settle_s: Annotated[int, Field(ge=0, le=3600)] = 0
    # at night (local time), SpO2 is taken as its median over this longer span: the
    # dips of sleep (REM, apnoeas) are not a ward observation of an awake patient
    night_spo2_settle_s: Annotated[int, Field(ge=0, le=7200)] = 0
    # ... and raised by how far the patient's usual night runs below 96 % (at most this
    # allowance; ``night_spo2_unknown_allowance`` before any earlier night is known):
    # healthy sleep runs 1-3 points below waking saturation
    night_spo2_allowance: Annotated[float, Field(ge=0, le=6)] = 0.0
    night_spo2_unknown_allowance: Annotated[float, Field(ge=0, le=6)] = 0.0
    # day and night, SpO2 lifted by how far the patient's usual value (their first 24 h)
    # runs below 96 %, at most this allowance
    spo2_usual_allowance: Annotated[float, Field(ge=0, le=6)] = 0.0
    # day and night, the respiratory rate lowered by how far the patient's usual rate
    # (their first 24 h) runs above 20/min, the top of NEWS2's normal band, at most this
    # allowance: a COPD patient breathing 22/min at rest from the first day is not a new
    # sign; a rise from their own rate still scores
    resp_rate_usual_allowance: Annotated[float, Field(ge=0, le=4)] = 0.0
    # asleep, whether a single red score from SpO2 alone opens an alert (the night-aware
    # SpO2 rules judge sleeping saturation; SpO2 still counts in the NEWS2 total)
    night_spo2_single_opens: bool = True
    # respiratory rate taken as its median over this span (a patch's estimate)
    resp_rate_settle_s: Annotated[int, Field(ge=0, le=3600)] = 0
    night_start_h: Annotated[float, Field(ge=0, lt=24)] = 22.0
    night_end_h: Annotated[float, Field(ge=0, lt=24)] = 7.0
    # the night reaches this many hours further while the overnight oximeter is worn
    night_worn_extends_h: Annotated[float, Field(ge=0, le=4)] = 0.0
    # asleep, a slow pulse is judged against the patient's own nights: raised by how far
    # their usual night pulse runs below 56/min (at most this allowance, never above
    # 51/min, the bottom of NEWS2's normal band); a sleeping pulse of 45 is a
    # beta-blocked or fit heart at rest, not a deterioration. While no earlier night is
    # known, a patient on a beta-blocker gets ``night_pulse_beta_blocker_allowance``
    night_pulse_allowance: Annotated[float, Field(ge=0, le=15)] = 0.0
    night_pulse_beta_blocker_allowance: Annotated[float, Field(ge=0, le=15)] = 0.0
    # which NEWS2 clinical risk opens an alert, and with which priority
    low_medium: Priority | None = "low"
    medium: Priority | None = "medium"
    high: Priority = "high"
    require_complete: bool = False


class ShockIndexRule(_Rule):
    """Heart rate over systolic pressure from one cuff measurement (Allgöwer): above 1.0
    it points to blood loss or sepsis before either value alone crosses its limit."""

    kind: Literal["shock_index"]
    threshold: Annotated[float, Field(gt=0.3, lt=3)]
    freshness_s: Annotated[int, Field(ge=600, le=86_400)]


class TrendRule(_MetricRule):
    kind: Literal["trend"]
    window_s: Annotated[int, Field(ge=3600, le=14 * 86_400)]
    min_points: Annotated[int, Field(ge=3)]
    slope_per_h_above: float


class RiseRule(_MetricRule):
    kind: Literal["rise"]
    window_s: Annotated[int, Field(ge=3600, le=14 * 86_400)]
    rise_above: Annotated[float, Field(gt=0)]


class CongestionRule(_Rule):
    """Fluid overload in heart failure: a weight gain smaller than the 2 kg of the
    guideline rule (``rise_above`` over the lowest weight of ``window_s``) that comes with
    a sign of congestion, the median of the last ``signs_s`` of waking readings against
    the patient's usual: saturation ``spo2_below_usual_by`` points lower, or the pulse
    ``hr_above_usual_by`` faster. Weight alone finds a fifth to a third of
    decompensations (Gyllensten et al. 2016); weight rises over the days before one
    (Chaudhry et al. 2007; Ledwidge et al. 2013: up to 4 days before), while congestion
    lowers saturation and quickens the resting pulse, which predicts worsening better
    than weight (Moazeni et al. 2023)."""

    kind: Literal["congestion"]
    window_s: Annotated[int, Field(ge=86_400, le=14 * 86_400)]
    rise_above: Annotated[float, Field(gt=0)]
    signs_s: Annotated[int, Field(ge=3600, le=3 * 86_400)]
    spo2_below_usual_by: Annotated[float, Field(gt=0)]
    hr_above_usual_by: Annotated[float, Field(gt=0)]

    @property
    def sign_moves(self) -> dict[str, float]:
        """Per sign's metric, the move from the patient's usual that counts (below: < 0)."""
        return {"spo2_pct": -self.spo2_below_usual_by, "heart_rate_bpm": self.hr_above_usual_by}

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("weight_kg", *self.sign_moves)


class DepletionRule(_Rule):
    """Dehydration (a high-output ileostomy, vomiting, poor intake): a weight loss
    smaller than the weight-loss rule's (``fall_above`` kg or ``fall_pct_above`` percent,
    whichever is less, under the highest weight of ``window_s``) that comes with a sign
    of lost circulating volume, the median of the last ``signs_s`` of waking readings
    against the patient's usual: the pulse ``hr_above_usual_by`` faster, or the systolic
    pressure ``sbp_below_usual_by`` lower. A fall of a kilogram alone is within the
    day-to-day wander of a morning weight (about 1 %, Cheuvront et al. 2004) and the
    post-operative loss of the operation's fluid; a faster pulse and a lower pressure
    are the signs of hypovolaemia a home kit measures (McGee et al. 1999, JAMA)."""

    kind: Literal["depletion"]
    window_s: Annotated[int, Field(ge=86_400, le=14 * 86_400)]
    fall_above: Annotated[float, Field(gt=0)]
    fall_pct_above: Annotated[float, Field(gt=0, lt=50)] | None = None
    signs_s: Annotated[int, Field(ge=3600, le=3 * 86_400)]
    hr_above_usual_by: Annotated[float, Field(gt=0)]
    sbp_below_usual_by: Annotated[float, Field(gt=0)]

    @property
    def sign_moves(self) -> dict[str, float]:
        """Per sign's metric, the move from the patient's usual that counts (below: < 0)."""
        return {
            "heart_rate_bpm": self.hr_above_usual_by,
            "bp_systolic_mmhg": -self.sbp_below_usual_by,
        }

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("weight_kg", *self.sign_moves)


class BaselineRule(_MetricRule):
    kind: Literal["baseline"]
    direction: Literal["above", "below"]
    baseline_days: Annotated[float, Field(gt=0, le=14)]
    min_baseline_points: Annotated[int, Field(ge=3)]
    recent_s: Annotated[int, Field(ge=600, le=86_400)]
    k: Annotated[float, Field(gt=0)]
    min_scale: Annotated[float, Field(gt=0)]


class MissingDataRule(_MetricRule):
    kind: Literal["missing"]
    max_silence_s: Annotated[int, Field(ge=600, le=7 * 86_400)]
    # count only silence during the patient's waking hours (local time, outside the
    # night below): a spot-check kit is not used overnight, and a night nurse has no use
    # for an alert that a sleeping patient took no reading
    waking_hours_only: bool = False
    night_start_h: Annotated[float, Field(ge=0, lt=24)] = 22.0
    night_end_h: Annotated[float, Field(ge=0, lt=24)] = 7.0
    # the patient's reminder for this metric (``reminders`` of the protocol): the rule
    # fires only once the latest reminder went unanswered for ``reminder_grace_s``
    # (no reading since ``lead_s`` before it), so the patient gets their chance first
    reminder: RuleId | None = None
    reminder_grace_s: Annotated[int, Field(ge=600, le=12 * 3600)] = 7200
    # counted silence beyond which the alert takes ``raised_priority`` (notified again,
    # even when an earlier gap's alert was acknowledged and is still open)
    raised_after_s: Annotated[int, Field(ge=600, le=7 * 86_400)] | None = None
    raised_priority: Priority = "medium"

    @property
    def span_s(self) -> int:
        """How far back the window must reach to hold ``max_silence_s`` of counted
        silence: with waking hours only, the nights in between too."""
        longest = max(self.max_silence_s, self.raised_after_s or 0)
        if not self.waking_hours_only:
            return longest
        night_s = round(((self.night_end_h - self.night_start_h) % 24) * 3600)
        waking_s = 86_400 - night_s
        return longest + night_s * (longest // waking_s + 1)

    @property
    def category(self) -> Literal["clinical", "technical"]:
        return "technical"


class GatewayOfflineRule(_Rule):
    kind: Literal["gateway_offline"]
    after_s: Annotated[int, Field(ge=60, le=7 * 86_400)]

    @property
    def category(self) -> Literal["clinical", "technical"]:
        return "technical"


class BatteryRule(_Rule):
    """A battery below ``below_pct``. With ``critical_pct`` the team hears of it only at
    or below that level, when the device is about to stop: between the two the patient's
    phone asks them to recharge or change it (``alerts.battery_requests``), as every kit
    needs every few days, and that is not a call for the team. A battery that fails fast
    falls through the critical level within hours, or the device falls silent (the
    missing-data rules)."""

    kind: Literal["battery"]
    below_pct: Annotated[float, Field(gt=0, lt=100)]
    freshness_s: Annotated[int, Field(ge=600)]
    critical_pct: Annotated[float, Field(ge=0, lt=100)] | None = None

    @property
    def category(self) -> Literal["clinical", "technical"]:
        return "technical"


class ImplausibleRateRule(_Rule):
    kind: Literal["implausible_rate"]
    window_s: Annotated[int, Field(ge=600, le=86_400)]
    min_readings: Annotated[int, Field(ge=1)]
    rate_above: Annotated[float, Field(gt=0, lt=1)]

    @property
    def category(self) -> Literal["clinical", "technical"]:
        return "technical"


Rule = Annotated[
    SustainedRule
    | ConfirmedRule
    | RelativeRule
    | FallRule
    | SepsisScreenRule
    | RhythmRule
    | News2Rule
    | ShockIndexRule
    | TrendRule
    | RiseRule
    | CongestionRule
    | DepletionRule
    | BaselineRule
    | MissingDataRule
    | GatewayOfflineRule
    | BatteryRule
    | ImplausibleRateRule
    # what the patient reports (alerts/reported_protocol.py)
    | ReportedHighRule
    | ReportedRiseRule
    | WoundInfectionRule
    | CalfPulseRule
    | ReportedNewRule,
    Field(discriminator="kind"),
]


class Reminder(BaseModel):
    """A Web Push to the patient's phone at a local time of every day (the patient's
    time zone): measure ``metrics``, or answer the day's questionnaire. A reminder is
    answered by a reading of each of its metrics taken from ``lead_s`` before it (a
    patient who measured early is not reminded); it is not sent more than ``late_s``
    after its time (an engine that was down all morning does not remind at night)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: RuleId
    at: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]  # local HH:MM
    metrics: tuple[str, ...] = ()
    questionnaire: bool = False
    lead_s: Annotated[int, Field(ge=0, le=12 * 3600)] = 3 * 3600
    late_s: Annotated[int, Field(ge=300, le=12 * 3600)] = 2 * 3600

    @model_validator(mode="after")
    def _something_to_do(self) -> Reminder:
        unknown = [m for m in self.metrics if m not in BY_NAME]
        if unknown:
            raise ValueError(f"unknown metric {unknown[0]!r}")
        if not self.metrics and not self.questionnaire:
            raise ValueError("a reminder names metrics to measure or the questionnaire")
        return self

    @property
    def at_s(self) -> int:
        """Seconds after local midnight."""
        hours, minutes = self.at.split(":")
        return int(hours) * 3600 + int(minutes) * 60


class FullSetTrigger(BaseModel):
    """A waking reading that asks for a full set: past ``above`` / ``at_or_above`` /
    ``below`` (fixed limits), and past the patient's usual value by ``above_usual_by`` /
    ``below_usual_by`` when those are given (every limit given must be passed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    above: float | None = None
    at_or_above: float | None = None
    below: float | None = None
    above_usual_by: Annotated[float, Field(gt=0)] | None = None
    below_usual_by: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _a_limit(self) -> FullSetTrigger:
        if self.metric not in BY_NAME:
            raise ValueError(f"unknown metric {self.metric!r}")
        limits = (self.above, self.at_or_above, self.below)
        if all(v is None for v in (*limits, self.above_usual_by, self.below_usual_by)):
            raise ValueError("a full-set trigger needs a limit")
        return self


class FullSet(BaseModel):
    """When one waking reading is off (``triggers``) and others that would tell whether it
    matters are not fresh (``asks``, none within ``fresh_s``), the patient's phone asks
    for a full set of measurements now, as a ward takes a full set of observations
    when one is abnormal (NEWS2 is scored on a full set; RCP 2017). A request, not an
    alert: the team hears of the readings it brings through the rules. At most one in
    ``every_s``; it lapses after ``expires_s``; none at night (a sleeping patient is
    not woken for a reading no rule found alarming)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asks: Annotated[tuple[str, ...], Field(min_length=1)]
    triggers: Annotated[tuple[FullSetTrigger, ...], Field(min_length=1)]
    within_s: Annotated[int, Field(ge=300, le=6 * 3600)] = 3600
    fresh_s: Annotated[int, Field(ge=300, le=6 * 3600)] = 3600
    every_s: Annotated[int, Field(ge=3600, le=7 * 86_400)] = 6 * 3600
    expires_s: Annotated[int, Field(ge=600, le=12 * 3600)] = 2 * 3600
    settle_s: Annotated[int, Field(ge=0, le=1800)] = 300

    @model_validator(mode="after")
    def _known(self) -> FullSet:
        unknown = [m for m in self.asks if m not in BY_NAME]
        if unknown:
            raise ValueError(f"unknown metric {unknown[0]!r}")
        return self


class Escalation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tiers: Annotated[list[Literal["coordinator", "physician", "admin"]], Field(min_length=1)]
    after_s: dict[Priority, Annotated[int, Field(ge=60)]]


class Protocol(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    protocol: RuleId
    title: str
    auto_resolve_after_s: Annotated[int, Field(ge=60, le=86_400)]
    escalation: Escalation
    rules: Annotated[list[Rule], Field(min_length=1)]
    reminders: list[Reminder] = []
    full_set: FullSet | None = None

    @model_validator(mode="after")
    def _unique_rule_ids(self) -> Protocol:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} appears twice")
            seen.add(rule.id)
        reminders = {r.id: r for r in self.reminders}
        if len(reminders) != len(self.reminders):
            raise ValueError("a reminder id appears twice")
        for rule in self.rules:
            if isinstance(rule, ConfirmedRule | RelativeRule) and rule.metric not in REQUEST_KIND:
                raise ValueError(
                    f"rule {rule.id!r}: the patient app cannot ask to measure {rule.metric!r}"
                    " again (vitals/remeasure.py)"
                )
            if isinstance(rule, MissingDataRule) and rule.reminder is not None:
                linked = reminders.get(rule.reminder)
                if linked is None:
                    raise ValueError(f"rule {rule.id!r}: no reminder {rule.reminder!r}")
                if rule.metric not in linked.metrics:
                    raise ValueError(
                        f"rule {rule.id!r}: reminder {rule.reminder!r} does not ask for"
                        f" {rule.metric!r}"
                    )
        return self

    def reminder(self, reminder_id: str) -> Reminder:
        return next(r for r in self.reminders if r.id == reminder_id)

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


class ProtocolError(ValueError):
    """A protocol file that does not validate; the message names file, line and field."""


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML node at a pydantic error location, as deep as it goes."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        if child is None:
            continue  # a discriminator tag, or a field that is missing: stay here
        node = child
        line = node.start_mark.line + 1
    return line


def parse_protocol(text: str, source: str) -> Protocol:
    try:
        data = yaml.load(text, Loader=yaml.CSafeLoader)  # libyaml: safe, 10x faster
    except yaml.YAMLError as exc:
        raise ProtocolError(f"{source}: not valid YAML: {exc}") from None
    try:
        return Protocol.model_validate(data)
    except ValidationError as exc:
        node = yaml.compose(text, Loader=yaml.CSafeLoader)  # lines, for the message only
        problems = []
        for err in exc.errors(include_url=False):
            field = ".".join(str(p) for p in err["loc"]) or "(file)"
            line = _line_of(node, tuple(err["loc"]))
            problems.append(f"{source}:{line}: {field}: {err['msg']}")
        raise ProtocolError("\n".join(problems)) from None


def load_protocol_file(path: Path) -> Protocol:
    return parse_protocol(path.read_text(encoding="utf-8"), str(path))


def builtin_protocols() -> dict[str, Protocol]:
    """The protocols shipped in alerts/protocols/, by name."""
    out = {}
    for entry in sorted(resources.files("alerts.protocols").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            p = parse_protocol(entry.read_text(encoding="utf-8"), f"alerts/protocols/{entry.name}")
            out[p.protocol] = p
    return out
