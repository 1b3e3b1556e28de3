"""Translations of the clinician pages (French by default, English) with gettext
catalogs: ``api/locales/<lang>/LC_MESSAGES/messages.po``, compiled in memory at start-up
by Babel, so no generated ``.mo`` file lives in the repository. Message ids are English.
Dates and numbers are formatted with Babel in the viewer's locale and time zone."""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

UI_LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
# the shared pages' languages, each in its own name (the physician's switch, and the
# clinician's choice when making a link)
SHARE_LANGUAGE_NAMES = (
    ("fr", "Français"),
    ("en", "English"),
    ("es", "Español"),
    ("it", "Italiano"),
    ("de", "Deutsch"),
    ("pt", "Português"),
    ("ar", "العربية"),
    ("zh", "中文"),
)


def load_catalogs(
    domain: str = "messages", languages: tuple[str, ...] = UI_LANGUAGES
) -> dict[str, NullTranslations]:
    """English (the message ids) plus each language that has ``<domain>.po``: the
    clinician pages use ``messages``, the home physician's pages ``share``."""
    catalogs: dict[str, NullTranslations] = {"en": NullTranslations()}
    for lang in languages:
        compiled = _compiled(domain, lang)
        if compiled is not None:
            catalogs[lang] = compiled
    return catalogs


@functools.cache
def _compiled(domain: str, lang: str) -> Translations | None:
    """The shipped ``.po`` compiled once per process (they do not change while it runs;
    every app the process builds shares them, read-only)."""
    po = resources.files("api") / "locales" / lang / "LC_MESSAGES" / f"{domain}.po"
    if not po.is_file():
        return None
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


def negotiate(accept_language: str | None) -> str:
    """The first UI language the browser accepts, French otherwise."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in UI_LANGUAGES:
            return tag
    return DEFAULT_LANGUAGE


def locale_for(language: str, country: str | None) -> str:
    """The language as written in the patient's home country when Babel knows that pair
    (es_MX, pt_BR, ar_MA...), else the language alone."""
    if country:
        try:
            Locale.parse(f"{language}_{country}")
            return f"{language}_{country}"
        except (UnknownLocaleError, ValueError):
            pass
    return language


def viewer_locale(language: str, zone: str, accept_language: str | None) -> str:
    """The locale dates are written in: the viewer's language, in the region their browser
    names for that language (en-GB, en-US...), else the region of their time zone for
    English (an English-speaking physician in Europe reads 30 Nov 2026, 14:05)."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().replace("-", "_")
        if tag.lower().startswith(language + "_"):
            try:
                return str(Locale.parse(tag))
            except (UnknownLocaleError, ValueError):
                continue
    if language == "en":
        return "en_US" if zone.startswith("America/") else "en_GB"
    return language


def format_instant(value: datetime, zone: str, locale: str) -> str:
    """The one way an instant is written on every page: the locale's medium date and
    short time (what the browsers' Intl dateStyle medium / timeStyle short give)."""
    loc = Locale.parse(locale)
    local = value.astimezone(ZoneInfo(zone))
    day = format_date(local.date(), "medium", locale=loc)
    hour = format_time(local, "short", locale=loc)
    pattern = str(loc.datetime_formats.get("medium", "{1} {0}"))
    return pattern.replace("{1}", day).replace("{0}", hour).replace("'", "")


@dataclass(frozen=True, slots=True)
class Clock:
    """Formats UTC instants for one viewer: their zone, and the patient's beside it."""

    language: str
    viewer_zone: str
    locale: str = ""

    def at(self, value: datetime | None, _fmt: str = "") -> str:
        if value is None:
            return "—"
        return format_instant(value, self.viewer_zone, self.locale or self.language)

    @property
    def date_pattern(self) -> str:
        """The locale's short date with a four-digit year (dd/MM/yyyy, M/d/yyyy...): what
        the forms' date fields read, whatever language the browser itself speaks."""
        loc = Locale.parse(self.locale or self.language)
        pattern = str(loc.date_formats["short"].pattern)
        return re.sub(r"y+", "yyyy", pattern).replace("'", "")

    def date_example(self, value: datetime) -> str:
        return self.date_text(value.date())

    def date_text(self, value: date) -> str:
        """A day as the forms' date fields read it."""
        return format_date(value, self.date_pattern, locale=self.locale or self.language)

    def datetime_example(self, value: datetime) -> str:
        loc = self.locale or self.language
        return f"{self.date_example(value)} {format_time(value, 'short', locale=loc)}"

    def local(self, value: datetime | None, zone: str) -> str:
        """The time at the patient's home, with the zone's name."""
        if value is None:
            return "—"
        place = zone.rsplit("/", 1)[-1].replace("_", " ")
        return format_instant(value, zone, self.locale or self.language) + f" ({place})"
