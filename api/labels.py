"""How values read on the clinician pages: short metric labels (translated), values with
their unit and the catalogue's decimals, ages ("4 min ago"), evidence numbers. The
strings are marked with ``N_`` for extraction into the catalogs and translated at render
time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from babel.dates import format_date, format_timedelta
from babel.numbers import format_decimal
from babel.support import NullTranslations

from vitals.catalogue import BY_NAME


def N_(message: str) -> str:  # gettext's conventional name for "mark only"
    return message


SHORT = {
    "heart_rate_bpm": N_("HR"),
    "spo2_pct": N_("SpO2"),
    "temp_c": N_("Temp"),
    "bp_systolic_mmhg": N_("SBP"),
    "bp_diastolic_mmhg": N_("DBP"),
    "bp_mean_mmhg": N_("MAP"),
    "resp_rate_per_min": N_("RR"),
    "weight_kg": N_("Weight"),
    "glucose_mmol_l": N_("Glucose"),
    "steps_count": N_("Steps"),
    "pain_score": N_("Pain"),
    "battery_pct": N_("Battery"),
}
LONG = {
    "heart_rate_bpm": N_("Heart rate"),
    "spo2_pct": N_("Oxygen saturation (SpO2)"),
    "temp_c": N_("Body temperature"),
    "bp_systolic_mmhg": N_("Systolic blood pressure"),
    "bp_diastolic_mmhg": N_("Diastolic blood pressure"),
    "bp_mean_mmhg": N_("Mean arterial pressure"),
    "resp_rate_per_min": N_("Respiratory rate"),
    "weight_kg": N_("Body weight"),
    "glucose_mmol_l": N_("Blood glucose"),
    "steps_count": N_("Steps"),
    "pain_score": N_("Pain score (0-10)"),
    "battery_pct": N_("Device battery level"),
}
# UCUM codes as people write them
SHOWN_UNIT = {"Cel": "°C", "mm[Hg]": "mmHg", "{steps}": "", "{score}": "/10", "/min": "/min"}
# words that come from the database (roles, priorities, states, transitions)
WORDS = (
    N_("coordinator"),
    N_("physician"),
    N_("admin"),
    N_("high"),
    N_("medium"),
    N_("low"),
    N_("active"),
    N_("acknowledged"),
    N_("resolved"),
    N_("expired"),
    N_("revoked"),
    N_("locked"),
    N_("opened"),
    N_("opened_late"),
    N_("condition_cleared"),
    N_("condition_returned"),
    N_("auto_resolved"),
    N_("escalated_to_tier_1"),
    N_("escalated_to_tier_2"),
    N_("priority_raised_to_medium"),
    N_("priority_raised_to_high"),
)


@dataclass(frozen=True, slots=True)
class Labels:
    language: str
    translations: NullTranslations

    def _(self, message: str) -> str:
        return self.translations.gettext(message)

    def short(self, metric: str) -> str:
        return self._(SHORT.get(metric, metric))

    def long(self, metric: str) -> str:
        return self._(LONG.get(metric, metric))

    def unit(self, metric: str) -> str:
        ucum = BY_NAME[metric].ucum
        return SHOWN_UNIT.get(ucum, ucum)

    def value(self, metric: str, value: float | None) -> str:
        if value is None:
            return "?"
        m = BY_NAME[metric]
        pattern = "#,##0" + ("." + "0" * m.decimals if m.decimals else "")
        text = format_decimal(value, format=pattern, locale=self.language)
        unit = self.unit(metric)
        return f"{text} {unit}".strip() if unit != "%" else f"{text} %"

    def age(self, seconds: float | None) -> str:
        if seconds is None:
            return "—"
        return format_timedelta(
            timedelta(seconds=-max(seconds, 0.0)),
            add_direction=True,
            threshold=1.1,
            locale=self.language,
        )

    def date(self, value: date) -> str:
        return format_date(value, "medium", locale=self.language)

    def evidence(self, value: Any) -> str:
        if isinstance(value, float):
            return format_decimal(value, format="#,##0.##", locale=self.language)
        return str(value)
