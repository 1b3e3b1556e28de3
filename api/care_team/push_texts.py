"""The words of the care team's alert notifications, in the clinician's language.

A push carries codes only (why it was sent, the priority, for a silent system the
minutes); the team's service worker fetches these words with the clinician's session
and keeps the last ones for a push that arrives after the session ended. The alerts
engine cannot word them: the catalogs are the API's, and a subscription outlives a
change of language.
"""

from __future__ import annotations

from gettext import NullTranslations

from api.common.labels import N_

TITLES = {
    "opened": N_("New alert"),
    "priority_raised": N_("Alert priority raised"),
    "escalated": N_("Alert escalated to you"),
    "more_missing": N_("Another measurement missing"),
    "alert": N_("Alert"),
}
BODIES = {
    "high": N_("A patient needs review (high priority)."),
    "medium": N_("A patient needs review (medium priority)."),
    "low": N_("A patient needs review (low priority)."),
}
NO_DATA_TITLE = N_("No data from any home")
# {minutes} is replaced by the service worker
NO_DATA_BODY = N_(
    "No reading has arrived from any home for {minutes} min: alerts cannot fire. Check the system."
)


def push_texts(catalog: NullTranslations) -> dict[str, dict[str, str]]:
    return {
        "titles": {code: catalog.gettext(text) for code, text in TITLES.items()}
        | {"no_data": catalog.gettext(NO_DATA_TITLE)},
        "bodies": {code: catalog.gettext(text) for code, text in BODIES.items()}
        | {"no_data": catalog.gettext(NO_DATA_BODY)},
    }
