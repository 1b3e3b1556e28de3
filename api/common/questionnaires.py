"""The patient's daily questionnaire as its readers see it: the patient answering on
their phone (8 languages), the team on the patient page (French or English) and the home
physician on the shared page (8 languages). The questions and answers come from
``vitals/questionnaires/*.yaml``; their words are message ids of the ``questionnaire``
catalog domain (``locales/<lang>/LC_MESSAGES/questionnaire.po``), and the words of the
patient's form marked ``Q_`` here are in the same domain."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from babel.support import NullTranslations
from fastapi import Request

from api.common.i18n import SHARE_LANGUAGE_NAMES, load_catalogs
from store.questionnaires import StoredResponse, responses
from vitals.questionnaire import Item, Questionnaire

QUESTIONNAIRE_LANGUAGES = tuple(code for code, _ in SHARE_LANGUAGE_NAMES)
RTL = frozenset({"ar"})


def Q_(message: str) -> str:  # "mark for the questionnaire catalog"
    return message


# the form's own words (the questions are in the YAML files)
FORM_TEXTS = (
    Q_("Question %(number)s of %(total)s"),
    Q_("Send my answers"),
    Q_("Your answers were sent. Thank you."),
    Q_("Your answers could not be sent. Check your connection and press the button again."),
    Q_("You may leave out a question you cannot answer."),
    Q_("Please answer at least one question."),
    Q_("This answer is not one of the choices of this question."),
    Q_("This question is not part of your questionnaire."),
    Q_("No questionnaire is planned for your follow-up."),
    Q_("Today's questionnaire"),
    Q_("Last sent: %(time)s"),
)


def load_questionnaire_catalogs() -> dict[str, NullTranslations]:
    return load_catalogs("questionnaire", QUESTIONNAIRE_LANGUAGES)


@dataclass(frozen=True, slots=True)
class AnswerLine:
    item_id: str
    question: str
    answer: str
    notable: bool  # not the best answer the question allows: shown in bold
    value: float
    code_system: str
    code: str


@dataclass(frozen=True, slots=True)
class ResponseView:
    response_id: int
    answered_at: datetime
    language: str
    lines: tuple[AnswerLine, ...]

    @property
    def notable(self) -> tuple[AnswerLine, ...]:
        return tuple(line for line in self.lines if line.notable)


def answer_text(item: Item, value: float, gettext: Callable[[str], str]) -> str:
    """An answer in the reader's words: "7/10", "Yes", or the chosen option."""
    spec = item.answer
    if spec.type == "scale":
        return f"{value:g}/{spec.max}"
    if spec.type == "yes_no":
        return gettext("Yes") if value >= 1 else gettext("No")
    for option in spec.options:
        if option.value == round(value):
            return gettext(option.text)
    return f"{value:g}"


def is_notable(item: Item, value: float) -> bool:
    """Moderate pain or worse (4/10 and above: Gerbershagen et al. 2011), any other answer
    than the first (best) choice, or a yes."""
    if item.answer.type == "scale":
        return value >= 4
    return value > min(item.answer.values())


def view_of(
    stored: StoredResponse, questionnaire: Questionnaire | None, gettext: Callable[[str], str]
) -> ResponseView:
    """One response in the questionnaire's order; answers to questions that no longer
    exist in the questionnaire are left out (their readings stay on the charts)."""
    lines = []
    for item in questionnaire.items if questionnaire else ():
        value = stored.answers.get(item.id)
        if value is None:
            continue
        lines.append(
            AnswerLine(
                item.id,
                gettext(item.text),
                answer_text(item, value, gettext),
                is_notable(item, value),
                value,
                *item.code,
            )
        )
    return ResponseView(stored.response_id, stored.answered_at, stored.language, tuple(lines))


def response_views(
    conn: psycopg.Connection,
    patient_id: int,
    questionnaires: Mapping[str, Questionnaire],
    gettext: Callable[[str], str],
    limit: int = 30,
) -> list[ResponseView]:
    """The patient's latest responses, newest first, in the reader's words."""
    return [
        view_of(r, questionnaires.get(r.protocol), gettext)
        for r in responses(conn, patient_id, limit)
    ]


def reader_gettext(request: Request, language: str) -> Callable[[str], str]:
    """The questionnaire catalog's gettext in ``language`` (English when it has none)."""
    catalogs: dict[str, NullTranslations] = request.app.state.questionnaire_catalogs
    return catalogs.get(language, catalogs["en"]).gettext


def timeline_items(
    request: Request, conn: psycopg.Connection, patient_id: int, language: str
) -> list[dict[str, Any]]:
    """The patient's latest responses as items of the team's timeline."""
    views = response_views(
        conn, patient_id, request.app.state.questionnaires, reader_gettext(request, language)
    )
    return [{"kind": "questionnaire", "at": v.answered_at, "response": v} for v in views]
