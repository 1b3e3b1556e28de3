"""The patient's daily questionnaire: which questions, in which order, what answers each
allows, and the metric (hence the code) each answer is stored under. One YAML file per
surgical protocol in ``vitals/questionnaires/``, named after the alert protocol it goes
with; the API shows it, the alerts engine judges the answers, the evaluation simulates
them, so it is shared vocabulary (the rules on the answers live in the alert protocols).

Texts are English message ids of the ``questionnaire`` catalog domain
(``api/locales/<lang>/LC_MESSAGES/questionnaire.po``), translated at display time.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vitals.catalogue import BY_NAME, MetricKind

# answers without a LOINC code carry this code system and the metric's name as code
LOCAL_SYSTEM = "https://postop.example.org/fhir/CodeSystem/patient-reported"
LOINC_SYSTEM = "http://loinc.org"
ItemId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{2,47}$")]


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: int
    text: str = Field(min_length=1, max_length=160)


class Answer(BaseModel):
    """``scale``: an integer from ``min`` to ``max`` with words at both ends; ``yes_no``:
    1 for yes, 0 for no; ``choice``: one of ``options``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["scale", "yes_no", "choice"]
    min: int = 0
    max: int = 1
    low: str | None = None
    high: str | None = None
    options: tuple[Option, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Answer:
        if self.type == "choice" and len(self.options) < 2:
            raise ValueError("a choice needs at least two options")
        if self.type == "scale" and (self.low is None or self.high is None or self.max <= self.min):
            raise ValueError("a scale needs min < max and words for both ends (low, high)")
        return self

    def values(self) -> tuple[int, ...]:
        """Every value a patient may give."""
        if self.type == "yes_no":
            return (0, 1)
        if self.type == "choice":
            return tuple(o.value for o in self.options)
        return tuple(range(self.min, self.max + 1))

    def texts(self) -> tuple[str, ...]:
        """The message ids of the answer's words."""
        words = [o.text for o in self.options] + [w for w in (self.low, self.high) if w]
        return tuple(words + (["Yes", "No"] if self.type == "yes_no" else []))


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ItemId
    metric: str
    text: str = Field(min_length=3, max_length=300)
    help: str | None = Field(default=None, max_length=300)
    answer: Answer

    @model_validator(mode="after")
    def _fits_metric(self) -> Item:
        m = BY_NAME.get(self.metric)
        if m is None or m.kind is not MetricKind.PATIENT_REPORTED:
            raise ValueError(f"{self.metric!r} is not a patient-reported metric")
        outside = [v for v in self.answer.values() if not m.is_plausible(v)]
        if outside:
            raise ValueError(f"answers {outside} lie outside {self.metric}'s range")
        return self

    @property
    def code(self) -> tuple[str, str]:
        """(system, code): LOINC when the metric has one, else the local code system."""
        loinc = BY_NAME[self.metric].loinc
        return (LOINC_SYSTEM, loinc) if loinc else (LOCAL_SYSTEM, self.metric)


class Questionnaire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    protocol: ItemId
    version: Annotated[int, Field(ge=1)]
    title: str
    intro: str
    items: Annotated[tuple[Item, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> Questionnaire:
        for attr in ("id", "metric"):
            seen = [getattr(i, attr) for i in self.items]
            if len(seen) != len(set(seen)):
                raise ValueError(f"an item {attr} appears twice")
        return self

    def item(self, item_id: str) -> Item:
        for i in self.items:
            if i.id == item_id:
                return i
        raise KeyError(item_id)

    def texts(self) -> list[str]:
        """Every message id the questionnaire shows (for the catalogs' completeness)."""
        out = [self.title, self.intro]
        for i in self.items:
            out += [i.text, *([i.help] if i.help else []), *i.answer.texts()]
        return out


class QuestionnaireError(ValueError):
    """A questionnaire file that does not validate; the message names file and field."""


def parse_questionnaire(text: str, source: str) -> Questionnaire:
    try:
        data = yaml.load(text, Loader=yaml.CSafeLoader)  # libyaml: safe, 10x faster
    except yaml.YAMLError as exc:
        raise QuestionnaireError(f"{source}: not valid YAML: {exc}") from None
    try:
        return Questionnaire.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{source}: {'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        ]
        raise QuestionnaireError("\n".join(problems)) from None


def load_questionnaires(directory: Path | None = None) -> dict[str, Questionnaire]:
    """The questionnaires by protocol: the shipped ones, or every ``*.yaml`` of
    ``directory``."""
    out = {}
    if directory is None:
        entries = sorted(resources.files("vitals.questionnaires").iterdir(), key=lambda e: e.name)
        files = [(e.name, e.read_text(encoding="utf-8")) for e in entries]
    else:
        files = [(p.name, p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*"))]
    for name, text in files:
        if name.endswith(".yaml"):
            q = parse_questionnaire(text, f"vitals/questionnaires/{name}")
            out[q.protocol] = q
    return out
