"""Every word the patient reads in the questionnaire (the questions and answers of every
shipped questionnaire, and the form's own words) exists in all eight languages: a text
added to a YAML file or to ``FORM_TEXTS`` without its translations fails here, naming the
language and the text."""

from __future__ import annotations

import re
from importlib import resources

import pytest
from babel.messages.pofile import read_po

from api.common.questionnaires import (
    FORM_TEXTS,
    QUESTIONNAIRE_LANGUAGES,
    load_questionnaire_catalogs,
)
from vitals.questionnaire import load_questionnaires

TEXTS = sorted({t for q in load_questionnaires().values() for t in q.texts()} | set(FORM_TEXTS))
PLACEHOLDER = re.compile(r"%\(\w+\)s")


@pytest.mark.parametrize("lang", [code for code in QUESTIONNAIRE_LANGUAGES if code != "en"])
def test_every_questionnaire_text_is_translated(lang: str) -> None:
    po = resources.files("api") / "locales" / lang / "LC_MESSAGES" / "questionnaire.po"
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    missing = [t for t in TEXTS if t not in catalog or not catalog[t].string]
    assert missing == [], f"{lang}: no translation for {missing}"
    for text in TEXTS:
        translated = catalog[text].string
        assert isinstance(translated, str)
        assert sorted(PLACEHOLDER.findall(translated)) == sorted(PLACEHOLDER.findall(text)), text


def test_the_catalogs_load_for_every_language() -> None:
    catalogs = load_questionnaire_catalogs()
    assert set(catalogs) == set(QUESTIONNAIRE_LANGUAGES)
    assert catalogs["ar"].gettext("Are you short of breath?") == "هل تعاني من ضيق في التنفس؟"
    assert catalogs["zh"].gettext("Send my answers") == "发送我的回答"
