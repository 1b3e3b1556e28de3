"""Words, dates, numbers and units of a document for one reader, without a request: a PDF
is made when a follow-up ends, for a physician who is not there. The same choices as the
shared pages (``share`` catalogs, the language in the patient's home country as the
locale, the link's units); times are written in the patient's zone, which the document
names."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_decimal
from babel.support import NullTranslations

from api.common.i18n import format_instant
from api.common.share_text import UNIT_WORDS
from api.common.units import convert, unit_label
from vitals.catalogue import BY_NAME

RTL = frozenset({"ar", "he", "fa", "ur"})


@dataclass(frozen=True, slots=True)
class Reader:
    language: str
    locale: str
    units: str  # "metric" or "us"
    zone: str  # the patient's
    catalog: NullTranslations

    def t(self, message: str, **values: Any) -> str:
        text = self.catalog.gettext(message)
        return text % values if values else text

    def at(self, value: datetime | None) -> str:
        return "—" if value is None else format_instant(value, self.zone, self.locale)

    def day(self, value: date | datetime | None) -> str:
        if value is None:
            return "—"
        if isinstance(value, datetime):
            value = value.astimezone(ZoneInfo(self.zone)).date()
        return format_date(value, "medium", locale=self.locale)

    def value(self, metric: str, value: float | None) -> float | None:
        """A stored value in the reader's units."""
        return convert(metric, value, self.units)

    def number(self, metric: str, value: float | None) -> str:
        shown = self.value(metric, value)
        if shown is None:
            return "—"
        decimals = max(
            BY_NAME[metric].decimals,
            1 if self.units == "us" and metric in ("temp_c", "weight_kg") else 0,
        )
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
        return format_decimal(shown, format=pattern, locale=self.locale)

    def count(self, n: int) -> str:
        return format_decimal(n, format="#,##0", locale=self.locale)

    def unit(self, metric: str) -> str:
        label = unit_label(metric, BY_NAME[metric].ucum, self.units)
        return self.t(UNIT_WORDS[label]) if label in UNIT_WORDS else label

    @staticmethod
    def dir_of(text: str | None) -> str:
        """The direction of a text typed by a person (a note in French inside an Arabic
        report keeps its full stop at its end): its first strong character's."""
        for c in text or "":
            kind = unicodedata.bidirectional(c)
            if kind in ("R", "AL"):
                return "rtl"
            if kind == "L":
                return "ltr"
        return "ltr"

    @property
    def direction(self) -> str:
        return "rtl" if self.language in RTL else "ltr"
