"""The emergency number of the patient's home country, from the cited table in
``emergency_numbers.yaml`` (read once). A country the table does not know gets no
number: the screen then says "your local emergency number" rather than guess."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml


@dataclass(frozen=True, slots=True)
class EmergencyNumbers:
    country: str
    call: str
    also: tuple[str, ...]


@cache
def table() -> dict[str, EmergencyNumbers]:
    text = (resources.files("api.patient") / "emergency_numbers.yaml").read_text("utf-8")
    rows = yaml.safe_load(text)["countries"]
    # a country code YAML 1.1 would read as a boolean (NO) must be quoted in the file
    assert all(isinstance(code, str) and len(code) == 2 for code in rows), "quote the codes"
    return {
        code: EmergencyNumbers(code, str(row["call"]), tuple(str(n) for n in row.get("also", ())))
        for code, row in rows.items()
    }


def for_country(country: str | None) -> EmergencyNumbers | None:
    return table().get(country) if country else None
