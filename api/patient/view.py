"""How the patient app writes for one reader: the ``patient`` catalog of their language,
the locale (the language in the patient's home country when Babel knows the pair), the
patient's zone, the writing direction; and the one way patient pages are rendered
(``no-store``, ``noindex``), which the siblings' pages use too."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from babel.support import NullTranslations
from fastapi import Request
from fastapi.responses import HTMLResponse

from api.common.i18n import SHARE_LANGUAGE_NAMES, format_instant, load_catalogs, locale_for
from api.common.patient_app import PATIENT_LANGUAGES

RTL = frozenset({"ar"})
NO_STORE = {
    "Cache-Control": "no-store, private",
    "Pragma": "no-cache",
    "X-Robots-Tag": "noindex, nofollow, noarchive",
    # the site's no-referrer makes browsers send "Origin: null" on the app's own forms;
    # same-origin still sends nothing to another site
    "Referrer-Policy": "same-origin",
}
LANGUAGE_NAMES = tuple((c, n) for c, n in SHARE_LANGUAGE_NAMES if c in PATIENT_LANGUAGES)


def patient_catalogs() -> dict[str, NullTranslations]:
    """The ``patient`` catalog of each language (English: the message ids), for
    ``app.state.patient_catalogs``."""
    return load_catalogs("patient", PATIENT_LANGUAGES)


def T_(message: str) -> str:
    return message


class PatientView:
    """Formatting for the patient: language, locale, zone."""

    def __init__(
        self, request: Request, language: str, zone: str = "UTC", country: str | None = None
    ) -> None:
        self.language = language if language in PATIENT_LANGUAGES else "en"
        self.zone = zone
        self.locale = locale_for(self.language, country)
        catalogs: dict[str, NullTranslations] = request.app.state.patient_catalogs
        self.catalog = catalogs.get(self.language, catalogs["en"])

    def t(self, message: str, **values: Any) -> str:
        text = self.catalog.gettext(message)
        return text % values if values else text

    def at(self, value: datetime | None) -> str:
        """An instant in the patient's zone, the locale's medium date and short time."""
        if value is None:
            return "—"
        return format_instant(value, self.zone, self.locale)

    @property
    def direction(self) -> str:
        return "rtl" if self.language in RTL else "ltr"


def browser_view(request: Request) -> PatientView:
    """For a page about no known patient: the browser's first language the app speaks."""
    for part in (request.headers.get("accept-language") or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in PATIENT_LANGUAGES:
            return PatientView(request, tag)
    return PatientView(request, "en")


def render(
    request: Request,
    template: str,
    view: PatientView,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A patient page (templates extend ``patient/base.html``), never cached."""
    page: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        template,
        {
            "t": view.t,
            "view": view,
            "lang": view.language,
            "dir": view.direction,
            **(context or {}),
        },
        status_code=status_code,
    )
    page.headers.update(NO_STORE)
    return page
