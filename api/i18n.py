"""Translations of the clinician pages (French by default, English) with gettext
catalogs: ``api/locales/<lang>/LC_MESSAGES/messages.po``, compiled in memory at start-up
by Babel, so no generated ``.mo`` file lives in the repository. Message ids are English.
Dates and numbers are formatted with Babel in the viewer's locale and time zone."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

UI_LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"


def load_catalogs(
    domain: str = "messages", languages: tuple[str, ...] = UI_LANGUAGES
) -> dict[str, NullTranslations]:
    """English (the message ids) plus each language that has ``<domain>.po``: the
    clinician pages use ``messages``, the home physician's pages ``share``."""
    catalogs: dict[str, NullTranslations] = {"en": NullTranslations()}
    root = resources.files("api") / "locales"
    for lang in languages:
        po = root / lang / "LC_MESSAGES" / f"{domain}.po"
        if not po.is_file():
            continue
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        catalogs[lang] = Translations(fp=buf)
    return catalogs


def negotiate(accept_language: str | None) -> str:
    """The first UI language the browser accepts, French otherwise."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in UI_LANGUAGES:
            return tag
    return DEFAULT_LANGUAGE


@dataclass(frozen=True, slots=True)
class Clock:
    """Formats UTC instants for one viewer: their zone, and the patient's beside it."""

    language: str
    viewer_zone: str

    def at(self, value: datetime | None, fmt: str = "medium") -> str:
        if value is None:
            return "—"
        return format_datetime(value, fmt, tzinfo=ZoneInfo(self.viewer_zone), locale=self.language)

    def local(self, value: datetime | None, zone: str) -> str:
        """The time at the patient's home, with the zone's name."""
        if value is None:
            return "—"
        return format_datetime(value, "short", tzinfo=ZoneInfo(zone), locale=self.language) + (
            f" ({zone})"
        )
