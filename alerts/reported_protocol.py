"""Rule kinds on what the patient reports in the daily questionnaire (vitals/
questionnaires/), declared in the protocols' YAML like every rule (``alerts.protocol``
adds them to its rule union). Answers are readings of patient-reported metrics, so each
rule reads them through the same windows as the vitals."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vitals.catalogue import BY_NAME, MetricKind

Priority = Literal["high", "medium", "low"]
RuleId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{2,47}$")]
DAY_S = 86_400


class _ReportedRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: RuleId
    priority: Priority
    title: str = Field(min_length=3, max_length=120)
    # an answer older than this no longer counts (the questionnaire is daily: a day and
    # a half leaves room for an answer given later in the evening)
    freshness_s: Annotated[int, Field(ge=3600, le=7 * DAY_S)] = 129_600
    # as every rule: how long the condition must stay clear before the alert resolves
    resolve_after_s: Annotated[int, Field(ge=60, le=7 * DAY_S)] | None = None

    @property
    def category(self) -> Literal["clinical", "technical"]:
        return "clinical"

    @property
    def reported(self) -> tuple[str, ...]:
        """The patient-reported metrics the rule reads."""
        raise NotImplementedError

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric the rule watches (answers, and any vital it combines them with)."""
        return self.reported

    @property
    def metric(self) -> str:
        """The metric whose units its evidence values are read in (the first answer)."""
        return self.reported[0]

    @model_validator(mode="after")
    def _reported_metrics(self) -> _ReportedRule:
        for name in self.reported:
            m = BY_NAME.get(name)
            if m is None or m.kind is not MetricKind.PATIENT_REPORTED:
                raise ValueError(f"{name!r} is not a patient-reported metric")
        return self


class ReportedHighRule(_ReportedRule):
    """The latest answer of any of ``answers`` at or above ``at_or_above`` (e.g. pain 7/10
    or more, at rest or on movement)."""

    kind: Literal["reported_high"]
    answers: Annotated[tuple[str, ...], Field(min_length=1)]
    at_or_above: float

    @property
    def reported(self) -> tuple[str, ...]:
        return self.answers


class ReportedRiseRule(_ReportedRule):
    """The latest answer of any of ``answers`` ``rise_by`` or more above the patient's
    previous answer to it, given at least ``min_gap_s`` earlier (the day before) and at
    most ``previous_within_s`` before the latest."""

    kind: Literal["reported_rise"]
    answers: Annotated[tuple[str, ...], Field(min_length=1)]
    rise_by: Annotated[float, Field(gt=0)]
    min_gap_s: Annotated[int, Field(ge=3600, le=3 * DAY_S)] = 43_200
    previous_within_s: Annotated[int, Field(ge=3600, le=7 * DAY_S)] = 2 * DAY_S

    @property
    def reported(self) -> tuple[str, ...]:
        return self.answers


class WoundInfectionRule(_ReportedRule):
    """Any of the wound ``signs`` reported, together with fever: a temperature at or above
    ``temp_at_or_above`` within ``temp_freshness_s``, or the patient reporting feeling
    feverish or chills (``fever_answer``) in the same questionnaire window."""

    kind: Literal["wound_infection"]
    signs: Annotated[tuple[str, ...], Field(min_length=1)]
    fever_answer: str
    temp_at_or_above: float
    temp_freshness_s: Annotated[int, Field(ge=3600, le=3 * DAY_S)]

    @property
    def reported(self) -> tuple[str, ...]:
        return (*self.signs, self.fever_answer)

    @property
    def metrics(self) -> tuple[str, ...]:
        return (*self.reported, "temp_c")


class CalfPulseRule(_ReportedRule):
    """Calf pain or swelling reported (``answer``) with a pulse that rose: its 15-minute
    median within ``hr_freshness_s`` above ``hr_above`` or ``hr_rise_above_usual`` above
    the patient's usual pulse (the hospital's value, else their first day's median):
    a deep-vein thrombosis that may be embolising."""

    kind: Literal["calf_pulse"]
    answer: str
    hr_above: float
    hr_rise_above_usual: Annotated[float, Field(gt=0)]
    hr_freshness_s: Annotated[int, Field(ge=600, le=3 * DAY_S)]

    @property
    def reported(self) -> tuple[str, ...]:
        return (self.answer,)

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.answer, "heart_rate_bpm")


class ReportedNewRule(_ReportedRule):
    """An answer at or above ``at_or_above`` that the patient's first answer to it after
    discharge was below (new, or worse than at first: breathlessness a patient already
    had on effort at home alerts only when it comes at rest); ``high_at_or_above`` raises
    it to high priority."""

    kind: Literal["reported_new"]
    answer: str
    at_or_above: float
    high_at_or_above: float | None = None

    @property
    def reported(self) -> tuple[str, ...]:
        return (self.answer,)


REPORTED_RULES = (
    ReportedHighRule,
    ReportedRiseRule,
    WoundInfectionRule,
    CalfPulseRule,
    ReportedNewRule,
)
