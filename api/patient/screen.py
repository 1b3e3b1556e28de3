"""One way to answer a screen of the patient app, used by every patient page (home,
questionnaires, photos...): the patient's language, locale and zone, the navigation,
and the "what to do now" panel (the team's hours and phone, the emergency number of the
patient's home country) that every screen carries.

A sibling page adds its tab to ``NAV`` and answers with
``patient_page(request, conn, caller, "patient/x.html", {...}, nav="x")``; its template
extends ``patient/base.html`` and fills ``{% block main %}``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from fastapi import Request
from fastapi.responses import HTMLResponse

from api.patient.access import PatientCaller
from api.patient.emergency import EmergencyNumbers, for_country
from api.patient.view import T_, PatientView, render


@dataclass(frozen=True, slots=True)
class Tab:
    key: str
    path: str
    label: str  # a message id of the patient catalog


# the app's sections, in the order of the tab bar (each sibling adds its own line)
NAV: tuple[Tab, ...] = (
    Tab("home", "/p/", T_("Home")),
    Tab("questionnaire", "/p/questionnaire", T_("Questionnaire")),
    Tab("photos", "/p/photos", T_("Wound photos")),
)


@dataclass(frozen=True, slots=True)
class TeamContact:
    name: str
    phone: str | None
    hours: str | None  # the team's own words (not translated)


@dataclass(frozen=True, slots=True)
class Help:
    """What the "what to do now" panel shows."""

    team: TeamContact
    emergency: EmergencyNumbers | None  # None: a country the table does not know


def help_for(conn: psycopg.Connection, patient_id: int) -> Help:
    return Help(team_contact(conn, patient_id), for_country(home_country(conn, patient_id)))


def team_contact(conn: psycopg.Connection, patient_id: int) -> TeamContact:
    row = conn.execute(
        "SELECT t.name, t.contact_phone, t.contact_hours FROM patients p"
        " JOIN care_teams t USING (team_id) WHERE p.patient_id = %s",
        (patient_id,),
    ).fetchone()
    assert row is not None
    return TeamContact(row[0], row[1], row[2])


def home_country(conn: psycopg.Connection, patient_id: int) -> str | None:
    row = conn.execute(
        "SELECT home_country FROM patients WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    return row[0] if row else None


def caller_view(request: Request, conn: psycopg.Connection, caller: PatientCaller) -> PatientView:
    return PatientView(request, caller.language, caller.zone, home_country(conn, caller.patient_id))


def patient_page(
    request: Request,
    conn: psycopg.Connection,
    caller: PatientCaller,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    nav: str,
    status_code: int = 200,
) -> HTMLResponse:
    """A screen of the patient app for ``caller`` (``nav``: the key of its tab)."""
    country = home_country(conn, caller.patient_id)
    view = PatientView(request, caller.language, caller.zone, country)
    help_panel = Help(team_contact(conn, caller.patient_id), for_country(country))
    return render(
        request,
        template,
        view,
        {"nav": nav, "tabs": NAV, "help": help_panel, **(context or {})},
        status_code,
    )
