"""Units the viewer expects: the database and the API keep UCUM units (°C, kg); a share
link made for a physician in the United States shows °F and lb. Conversion happens only
at display, never in storage."""

from __future__ import annotations

SHOWN = {"Cel": "°C", "mm[Hg]": "mmHg", "{score}": "/10"}
# UCUM annotations are words, translated by the caller (never shown in braces)
WORDS = {"{steps}": "steps"}


def convert(metric: str, value: float | None, units: str) -> float | None:
    if value is None or units != "us":
        return value
    if metric == "temp_c":
        return value * 9 / 5 + 32
    if metric == "weight_kg":
        return value * 2.2046226218
    return value


def unit_label(metric: str, ucum: str, units: str) -> str:
    if units == "us" and metric == "temp_c":
        return "°F"
    if units == "us" and metric == "weight_kg":
        return "lb"
    return WORDS.get(ucum) or SHOWN.get(ucum, ucum)
