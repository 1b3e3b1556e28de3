"""Refusals a person reads: every error the API or a page answers is one sentence in the
reader's language (the signed-in clinician's, else the browser's). A refusal carries its
English message id and its values; the handlers translate at the last moment, so the
OpenAPI ``{"detail": ...}`` contract is unchanged and JSON clients get a sentence too."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import HTTPException, Request
from pydantic_core import ErrorDetails

from api.common.i18n import negotiate
from api.common.labels import N_


class Refusal(HTTPException):
    """An HTTP error whose sentence is translated for the reader."""

    def __init__(self, status_code: int, message: str, **values: Any) -> None:
        super().__init__(status_code, message % values if values else message)
        self.message = message
        self.values = values


def refuse(status_code: int, message: str, **values: Any) -> Refusal:
    return Refusal(status_code, message, **values)


def reader_language(request: Request) -> str:
    """For the API: the language the client asks for (the pages' script sends the page's
    own), else the signed-in clinician's, else French. For pages: the clinician's, else
    the browser's."""
    asked = request.headers.get("accept-language")
    if request.url.path.startswith("/api/") and asked:
        return negotiate(asked)
    who = getattr(request.state, "clinician", None)
    if who is not None:
        return str(who.language)
    return negotiate(asked)


def translate(request: Request, exc: HTTPException) -> str:
    catalog = request.app.state.catalogs[reader_language(request)]
    if isinstance(exc, Refusal):
        text: str = catalog.gettext(exc.message)
        return text % exc.values if exc.values else text
    detail = exc.detail if isinstance(exc.detail, str) else ""
    if detail == HTTPStatus(exc.status_code).phrase:  # Starlette's "Not Found" and the like
        detail = ""
    return str(catalog.gettext(detail or STATUS.get(exc.status_code, REFUSED)))


REFUSED = N_("Request refused.")
BUSY = N_("The server is busy; try again in a moment.")


STATUS = {
    400: N_("The request could not be understood."),
    401: N_("Sign in first."),
    403: N_("You do not have the right to do this."),
    404: N_("This page does not exist."),
    405: N_("This action is not possible here."),
    409: N_("This was changed in the meantime; reload the page."),
    422: N_("Some of the values entered are not valid."),
    429: N_("Too many requests; wait a minute."),
}
# form fields as the pages label them
FIELDS = {
    "body": N_("Note"),
    "note": N_("Note"),
    "reason": N_("Reason"),
    "value": N_("Value"),
    "email": N_("E-mail address"),
    "password": N_("Password"),
    "display_name": N_("Name"),
    "role": N_("Role"),
    "team_ids": N_("Care teams"),
    "team_id": N_("Care team"),
    "language": N_("Language"),
    "time_zone": N_("Time zone"),
    "pseudonym": N_("Pseudonym"),
    "home_country": N_("Home country"),
    "procedure": N_("Procedure"),
    "surgery_date": N_("Surgery date"),
    "discharged_at": N_("Discharge"),
    "protocol": N_("Protocol"),
    "name": N_("Home physician"),
    "phone": N_("Physician's phone"),
    "gateway_id": N_("Gateway id"),
    "device_id": N_("Device id"),
    "ble_address": N_("Bluetooth address"),
    "kind": N_("Kind"),
    "start": N_("From"),
    "end": N_("Until"),
    "at": N_("When"),
    "days": N_("Valid for (days)"),
    "recipient": N_("Recipient"),
    "discharge_instructions": N_("Discharge instructions"),
    "medications": N_("Medications"),
    "contact_name": N_("Contact"),
    "contact_phone": N_("Phone"),
    "contact_email": N_("E-mail address"),
    "contact_hours": N_("Hours"),
    "rule_id": N_("Rule"),
    "param": N_("Parameter"),
    "metric": N_("Measure"),
    "endpoint": N_("Notification address"),
    "discharge_sbp_mmhg": N_("Usual systolic pressure (mmHg)"),
    "discharge_hr_bpm": N_("Usual heart rate (/min)"),
    "discharge_weight_kg": N_("Weight at discharge (kg)"),
    "beta_blocker": N_("Beta-blocker"),
    "sleep_apnoea": N_("Known sleep apnoea"),
    "notice_language": N_("Notice language"),
    "notice_version": N_("Notice version"),
    "decision": N_("Decision"),
    "decided_at": N_("Decided"),
    "country": N_("Country where they practise"),
    "sharing_consent_id": N_("Physician"),
    "consent_id": N_("Physician (patient's consent)"),
    "received_on": N_("Received on"),
    "shared_with_physician": N_("shown to the home physician"),
}
# pydantic's error types, as a sentence about one field
PROBLEMS = {
    "missing": N_("%(field)s: required."),
    "string_too_short": N_("%(field)s: too short (at least %(min_length)s characters)."),
    "string_too_long": N_("%(field)s: too long (at most %(max_length)s characters)."),
    "string_pattern_mismatch": N_("%(field)s: not in the expected form."),
    "literal_error": N_("%(field)s: choose one of the values offered."),
    "enum": N_("%(field)s: choose one of the values offered."),
    "int_parsing": N_("%(field)s: a whole number is needed."),
    "int_type": N_("%(field)s: a whole number is needed."),
    "float_parsing": N_("%(field)s: a number is needed."),
    "float_type": N_("%(field)s: a number is needed."),
    "finite_number": N_("%(field)s: a number is needed."),
    "bool_type": N_("%(field)s: yes or no is needed."),
    "bool_parsing": N_("%(field)s: yes or no is needed."),
    "greater_than_equal": N_("%(field)s: at least %(ge)s."),
    "less_than_equal": N_("%(field)s: at most %(le)s."),
    "greater_than": N_("%(field)s: more than %(gt)s."),
    "less_than": N_("%(field)s: less than %(lt)s."),
    "too_short": N_("%(field)s: choose at least one."),
    "date_from_datetime_parsing": N_("%(field)s: not a valid date."),
    "date_parsing": N_("%(field)s: not a valid date."),
    "datetime_parsing": N_("%(field)s: not a valid date and time."),
    "datetime_from_date_parsing": N_("%(field)s: not a valid date and time."),
    "value_error": N_("%(field)s: not valid."),
    "extra_forbidden": N_("%(field)s: not expected here."),
    "json_invalid": N_("The request could not be understood."),
    "blank": N_("%(field)s: cannot be empty or only spaces."),
    "unknown_zone": N_("%(field)s: unknown time zone (choose one from the list)."),
    "email": N_("%(field)s: not a valid e-mail address."),
    "nul_character": N_("%(field)s: contains a character that cannot be stored."),
    "date_out_of_range": N_("%(field)s: must lie between %(earliest)s and %(latest)s."),
    "datetime_without_offset": N_("%(field)s: needs a time zone offset (e.g. Z or +01:00)."),
}


def field_name(loc: tuple[int | str, ...]) -> str:
    rest = loc[1:] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else loc
    names = [p for p in rest if isinstance(p, str)]
    return names[-1] if names else ""


def validation_sentence(request: Request, errors: list[ErrorDetails]) -> str:
    """One translated sentence per problem, the form's own field names."""
    catalog = request.app.state.catalogs[reader_language(request)]
    parts: list[str] = []
    for err in errors:
        key = field_name(tuple(err.get("loc", ())))
        field = catalog.gettext(FIELDS[key]) if key in FIELDS else catalog.gettext(N_("Value"))
        kind = str(err.get("type", "value_error"))
        if kind == "value_error" and "email" in str(err.get("msg", "")).lower():
            kind = "email"
        template = PROBLEMS.get(kind, PROBLEMS["value_error"])
        values: dict[str, Any] = {"field": field, **{k: v for k, v in err.get("ctx", {}).items()}}
        try:
            parts.append(catalog.gettext(template) % values)
        except (KeyError, TypeError, ValueError):
            fallback = PROBLEMS["value_error"]
            parts.append(catalog.gettext(fallback) % {"field": field})
    unique = list(dict.fromkeys(parts))
    invalid = STATUS[422]
    return " ".join(unique) or catalog.gettext(invalid)
