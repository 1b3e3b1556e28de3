"""An enrolled phone for tests of the patient app: a real enrollment link made and used
through ``api.common.patient_app`` (as the team and the phone do), so the credential is
exactly what ``/p/enroll/{token}`` would give."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from api.common.patient_app import create_link, use_link
from api.patient.access import COOKIE, COOKIE_PATH
from vitals.settings import Settings

if TYPE_CHECKING:  # Playwright's cookie type (its public module does not name it)
    from playwright._impl._api_structures import SetCookieParam


@dataclass(frozen=True)
class PatientPhone:
    patient_id: int
    credential_id: int
    token: str  # the cookie's value

    @property
    def cookies(self) -> dict[str, str]:
        """For ``TestClient(..., cookies=phone.cookies)`` or ``httpx``."""
        return {COOKIE: self.token}

    def playwright_cookie(self, base_url: str) -> SetCookieParam:
        """For ``context.add_cookies([phone.playwright_cookie(base)])``."""
        return {
            "name": COOKIE,
            "value": self.token,
            "url": base_url.rstrip("/") + COOKIE_PATH + "/",
            "httpOnly": True,
            "sameSite": "Lax",
        }


def enroll_phone(conninfo: str, patient_id: int) -> PatientPhone:
    """Make and use an enrollment link for ``patient_id`` (by a clinician of the
    patient's team; one is created if the team has none). Replaces earlier phones."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT ct.clinician_id FROM patients p JOIN clinician_teams ct USING (team_id)"
            " WHERE p.patient_id = %s ORDER BY ct.clinician_id LIMIT 1",
            (patient_id,),
        ).fetchone()
        if row is None:
            made = conn.execute(
                "INSERT INTO clinicians (email, display_name, role, password_hash)"
                " VALUES (%s, 'Test coordinator', 'coordinator', '!') RETURNING clinician_id",
                (f"phone-maker-{patient_id}@hopital.example",),
            ).fetchone()
            assert made is not None
            conn.execute(
                "INSERT INTO clinician_teams (clinician_id, team_id)"
                " SELECT %s, team_id FROM patients WHERE patient_id = %s",
                (made[0], patient_id),
            )
            row = made
        link = create_link(conn, patient_id, int(row[0]))
        _state, _holder, credential_id, token = use_link(conn, link.token)
    assert credential_id is not None
    assert token is not None
    return PatientPhone(patient_id, credential_id, token)


def home_page(settings: Settings, phone: PatientPhone) -> str:
    """The patient app's home screen as the enrolled phone gets it (HTML)."""
    with TestClient(create_app(settings), cookies=phone.cookies) as client:
        page = client.get("/p/")
        assert page.status_code == 200
        return page.text
