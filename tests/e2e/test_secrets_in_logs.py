"""No secret reaches a log: the API as a real process at DEBUG level, a clinician signing
in, making a shared link with a second code, the physician using it (page, wrong code,
right code, trends, FHIR). Neither the token, the code, the session cookie nor the
password appears in the process's output."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import psycopg

from api.common.passwords import hash_password
from postop.ports import free_port, wait_port
from store.clinicians import create_clinician
from store.provisioning import ensure_patient, ensure_team
from tests.stack import ServiceProcess

PASSWORD = "a long clinician password"


def test_tokens_codes_and_passwords_never_reach_the_log(db: str, workdir: Path) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        team = ensure_team(conn, "Team")
        create_clinician(
            conn, "dr@hopital.example", "Dr", "physician", hash_password(PASSWORD), [team]
        )
        patient = ensure_patient(conn, "P-LOG-01", team, "en", "Europe/London")
    port = free_port()
    api = ServiceProcess(
        "api.main",
        {"POSTOP_DATABASE_URL": db, "POSTOP_API__PORT": str(port), "POSTOP_LOG_LEVEL": "DEBUG"},
        workdir / "api",
    ).start()
    try:
        assert wait_port(port, 30)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base) as clinician:
            res = clinician.post(
                "/api/v1/session", json={"email": "dr@hopital.example", "password": PASSWORD}
            )
            res.raise_for_status()
            session = clinician.cookies["postop_session"]
            link = clinician.post(
                f"/api/v1/patients/{patient}/share-links",
                json={"language": "en", "second_code": True},
                headers={"X-CSRF-Token": res.json()["csrf_token"]},
            ).json()
        token = link["url"].removeprefix("/s/")
        with httpx.Client(base_url=base) as physician:
            form = physician.get(link["url"]).text
            form_token = re.search(r'name="form_token" value="([^"]+)"', form)
            assert form_token is not None
            wrong = "000000" if link["code"] != "000000" else "999999"
            physician.post(f"{link['url']}/code", data={"code": wrong, "form_token": form_token[1]})
            form = physician.get(link["url"]).text
            form_token = re.search(r'name="form_token" value="([^"]+)"', form)
            assert form_token is not None
            physician.post(
                f"{link['url']}/code", data={"code": link["code"], "form_token": form_token[1]}
            )
            assert "P-LOG-01" in physician.get(link["url"]).text
            assert physician.get(f"{link['url']}/trends?metric=spo2_pct").status_code == 200
            assert physician.get(f"{link['url']}/fhir").status_code == 200
            share_session = physician.cookies["postop_share"]
    finally:
        api.stop()
    log = api.log()
    assert "Application startup complete" in log  # the log was written at all
    for secret in (token, link["code"], session, PASSWORD, share_session):
        assert secret not in log
