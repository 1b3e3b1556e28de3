"""The patient app's words and numbers: every patient-facing string (``t`` in the
patient templates, ``T_`` and ``t`` in api/patient) is translated in each of the eight
languages' ``patient`` catalogs (English: the message ids), with its placeholders; and
the emergency table covers the countries the team serves with plausible numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from api.common.patient_app import PATIENT_LANGUAGES
from api.patient.emergency import table

API_DIR = Path(__file__).resolve().parents[2] / "api"
# the same patterns as babel-patient.cfg
METHOD_MAP = [("patient/**.py", "python"), ("templates/patient/**.html", "jinja2")]


def in_code() -> set[str]:
    found = extract_from_dir(str(API_DIR), METHOD_MAP, keywords={"t": None, "T_": None})
    return {msg[2] if isinstance(msg[2], str) else msg[2][0] for msg in found}


def test_the_patient_app_has_words_to_translate() -> None:
    words = in_code()
    assert len(words) > 40
    assert "What to do now" in words
    assert "Please go to the emergency department now." in words


@pytest.mark.parametrize("language", [lang for lang in PATIENT_LANGUAGES if lang != "en"])
def test_patient_catalog_translates_every_patient_facing_string(language: str) -> None:
    with (API_DIR / "locales" / language / "LC_MESSAGES" / "patient.po").open("rb") as fh:
        catalog = read_po(fh)
    translated = {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}
    missing = in_code() - set(translated)
    assert missing == set(), f"{language}: untranslated {sorted(missing)}"
    for msgid, text in translated.items():
        assert re.findall(r"%\(\w+\)s", str(msgid)) == re.findall(r"%\(\w+\)s", str(text)), msgid


# the countries the team serves: the EU, the rest of Europe, North America, the Gulf
# states, the Maghreb, China, Brazil, and the usual countries of its patients
SERVED = {
    *[
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    ],
    *[
        "CH",
        "GB",
        "IS",
        "LI",
        "NO",
        "US",
        "CA",
        "SA",
        "AE",
        "QA",
        "KW",
        "BH",
        "OM",
        "MA",
        "DZ",
        "TN",
        "CN",
        "BR",
    ],
}


def test_emergency_numbers_cover_the_served_countries() -> None:
    numbers = table()
    assert set(numbers) >= SERVED
    for code, entry in numbers.items():
        assert re.fullmatch(r"[A-Z]{2}", code)
        for number in (entry.call, *entry.also):
            assert re.fullmatch(r"\d{2,4}", number), (code, number)
    assert numbers["US"].call == "911"
    assert numbers["GB"].call == "999"
    assert numbers["CN"].call == "120"
    assert numbers["BR"].call == "192"
    assert numbers["FR"].call == "15"
    assert "112" in numbers["FR"].also
    assert numbers["NO"].call == "113"  # 112 is the police there
    eu = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK"
    for code in eu.split():  # 112 reaches help in every member state
        assert "112" in (numbers[code].call, *numbers[code].also), code
