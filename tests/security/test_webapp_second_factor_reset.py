"""An admin resets a colleague's second factor (a lost phone) from the administration
page, over a real database: the secret and recovery codes are gone, the colleague's
sessions end, an audit row says who reset whom, and the colleague enrols again at the
next sign-in. Refused, with a sentence, for another team's account, a non-admin, and the
admin's own account; a refusal changes nothing."""

from __future__ import annotations

import re
from datetime import timedelta

import psycopg
import pyotp
from fastapi.testclient import TestClient

from api.common import second_factor as factor
from api.common.sessions import COOKIE, open_session
from tests import second_factor
from tests.security.webapp_world import (
    PASSWORD,
    Clients,
    World,
    add_clinician,
    app_settings,
    clients,
    world,
)

__all__ = ["app_settings", "clients", "world"]


def _id(db: str, email: str) -> int:
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT clinician_id FROM clinicians WHERE email = %s", (email,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def _factor_state(db: str, clinician_id: int) -> tuple[bool, int, int, int]:
    """(has a secret, unused recovery codes, open sessions, pending sign-ins)."""
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT totp_secret IS NOT NULL AND totp_enrolled_at IS NOT NULL,"
            " (SELECT count(*) FROM clinician_recovery_codes r"
            "  WHERE r.clinician_id = c.clinician_id AND used_at IS NULL),"
            " (SELECT count(*) FROM web_sessions s WHERE s.clinician_id = c.clinician_id),"
            " (SELECT count(*) FROM login_challenges l WHERE l.clinician_id = c.clinician_id)"
            " FROM clinicians c WHERE clinician_id = %s",
            (clinician_id,),
        ).fetchone()
    assert row is not None
    return bool(row[0]), int(row[1]), int(row[2]), int(row[3])


def _reset_rows(db: str) -> list[tuple[str, dict[str, int]]]:
    with psycopg.connect(db) as conn:
        return [
            (r[0], r[1])
            for r in conn.execute(
                "SELECT actor, detail FROM audit_log WHERE action = 'second_factor_reset'"
                " ORDER BY audit_id"
            )
        ]


def _password_step(client: TestClient, email: str) -> str:
    """The sign-in form and the password: the second step's page."""
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    res = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token[1]},
        follow_redirects=False,
    )
    assert res.status_code == 200, res.text
    return res.text


def test_an_admin_resets_a_colleague_who_then_enrols_again(world: World, clients: Clients) -> None:
    db = world.db
    nurse_email = world.emails["coordinator"]
    nurse = _id(db, nurse_email)
    with psycopg.connect(db, autocommit=True) as conn:
        secret = second_factor.secret_of(conn, nurse_email)
        codes = factor.enrol(conn, second_factor.BOX, nurse, secret, None)  # ten to lose
        # alert notifications: to the lost phone, and to a colleague's (which stay)
        for endpoint, who in (("lost-phone", nurse), ("colleague", _id(db, world.emails["admin"]))):
            conn.execute(
                "INSERT INTO push_subscriptions (team_id, role, endpoint, p256dh, auth,"
                " clinician_id) VALUES (%s, 'coordinator', %s, 'k', 'a', %s)",
                (world.team_a, f"https://push.example/{endpoint}", who),
            )
    phone = clients.signed_in(nurse_email)  # the lost phone's session
    desk = clients.signed_in(nurse_email)  # and the ward computer's
    pending = clients.anonymous()
    _password_step(pending, nurse_email)  # a sign-in waiting for its code
    assert phone.get("/api/v1/me").status_code == 200
    assert _factor_state(db, nurse) == (True, 10, 2, 1)

    admin = clients.signed_in(world.emails["admin"])
    admin.headers["Accept-Language"] = "fr"
    res = admin.post(f"/api/v1/clinicians/{nurse}/second-factor/reset")
    assert res.status_code == 200, res.text
    assert res.json() == {
        "clinician_id": nurse,
        "display_name": "Infirmière A",
        "sessions_closed": 2,
        "recovery_codes_cleared": 10,
        "security_keys_removed": 0,
        "push_subscriptions_removed": 1,
    }
    assert _factor_state(db, nurse) == (False, 0, 0, 0)
    with psycopg.connect(db) as conn:
        stored = conn.execute(
            "SELECT totp_secret, totp_enrolled_at, totp_last_step FROM clinicians"
            " WHERE clinician_id = %s",
            (nurse,),
        ).fetchone()
    assert stored == (None, None, None)
    with psycopg.connect(db) as conn:
        pushes = conn.execute("SELECT endpoint FROM push_subscriptions").fetchall()
    assert pushes == [("https://push.example/colleague",)]
    # who reset whom; the row's own time says when
    assert _reset_rows(db) == [
        (
            f"clinician:{_id(db, world.emails['admin'])}",
            {
                "clinician_id": nurse,
                "sessions_closed": 2,
                "recovery_codes_cleared": 10,
                "security_keys_removed": 0,
                "push_subscriptions_removed": 1,
            },
        )
    ]
    # the sessions are over; the admin's own is not
    assert phone.get("/api/v1/me").status_code == 401
    assert desk.get("/", follow_redirects=False).status_code == 303
    assert admin.get("/api/v1/me").status_code == 200
    # the old factor opens nothing (each attempt counts in the throttle, 3 here: the
    # recovery codes are checked gone above, the old authenticator's code here)
    refused = clients.anonymous().post(
        "/api/v1/session",
        json={"email": nurse_email, "password": PASSWORD, "code": pyotp.TOTP(secret).now()},
    )
    assert refused.status_code == 403  # sign in once on the page to set it up
    assert "second facteur" in refused.json()["detail"]
    with psycopg.connect(db, autocommit=True) as conn:
        assert not factor.use_recovery_code(conn, nurse, codes[0])
    # the next sign-in on the page enrols a new authenticator
    page = _password_step(clients.anonymous(), nurse_email)
    assert 'src="data:image/svg+xml' in page
    shown = re.search(r'<code class="totp-secret">([A-Z2-7 ]+)</code>', page)
    assert shown is not None
    assert shown[1].replace(" ", "") != secret
    # the administration page says it is done, and the state in the list
    admin_page = admin.get(f"/admin?second_factor_reset={nurse}")
    assert admin_page.status_code == 200
    assert (
        "Le second facteur du compte « Infirmière A » est réinitialisé : ses sessions sont fermées"
        in admin_page.text
    )
    row = re.search(rf'<tr data-clinician-id="{nurse}">.*?</tr>', admin_page.text, re.S)
    assert row is not None
    assert "pas encore configuré" in row[0]


def test_refusals_say_why_and_change_nothing(world: World, clients: Clients) -> None:
    db = world.db
    nurse_email = world.emails["coordinator"]
    nurse = _id(db, nurse_email)
    admin_a = _id(db, world.emails["admin"])
    add_clinician(db, "admin-b@hopital.example", "admin", [world.team_b])
    second_factor.code(db, nurse_email)  # enrolled
    nurse_client = clients.signed_in(nurse_email)
    before = _factor_state(db, nurse)
    assert before == (True, 10, 1, 0)

    # another team's admin: answered like an unknown account, on the API and the page
    other = clients.signed_in("admin-b@hopital.example")
    for target in (nurse, 987654):
        res = other.post(
            f"/api/v1/clinicians/{target}/second-factor/reset",
            headers={"Accept-Language": "en"},
        )
        assert res.status_code == 404
        assert res.json()["detail"] == "No colleague with this account in your care teams."
        page = other.get(f"/admin/clinicians/{target}/second-factor-reset")
        assert page.status_code == 404
        assert "Aucun collègue de vos équipes de soins n&#39;a ce compte." in page.text
    # team B's list does not show team A's accounts
    listing = other.get("/admin").text
    assert nurse_email not in listing
    assert f"/admin/clinicians/{nurse}/" not in listing

    # a non-admin (a colleague of the same team)
    for role in ("physician", "coordinator"):
        client = nurse_client if role == "coordinator" else clients.signed_in(world.emails[role])
        res = client.post(
            f"/api/v1/clinicians/{admin_a}/second-factor/reset",
            headers={"Accept-Language": "en"},
        )
        assert res.status_code == 403
        assert res.json()["detail"] == "Your role does not allow this."
        assert client.get(f"/admin/clinicians/{admin_a}/second-factor-reset").status_code == 403

    # the admin's own account: recovery codes are for that
    admin = clients.signed_in(world.emails["admin"])
    own = admin.post(
        f"/api/v1/clinicians/{admin_a}/second-factor/reset", headers={"Accept-Language": "en"}
    )
    assert own.status_code == 403
    assert own.json()["detail"].startswith("You cannot reset your own second factor")
    own_page = admin.get(f"/admin/clinicians/{admin_a}/second-factor-reset")
    assert own_page.status_code == 403
    assert "Vous ne pouvez pas réinitialiser votre propre second facteur" in own_page.text
    assert f"/admin/clinicians/{admin_a}/" not in admin.get("/admin").text
    # without the session's CSRF token, even the right admin is refused
    bare = admin.post(
        f"/api/v1/clinicians/{nurse}/second-factor/reset", headers={"X-CSRF-Token": "x"}
    )
    assert bare.status_code == 403

    assert _factor_state(db, nurse) == before
    assert _factor_state(db, admin_a)[0]
    assert _reset_rows(db) == []
    assert nurse_client.get("/api/v1/me").status_code == 200


def test_the_confirmation_step_says_what_will_happen(world: World, clients: Clients) -> None:
    nurse = _id(world.db, world.emails["coordinator"])
    second_factor.code(world.db, world.emails["coordinator"])  # enrolled
    admin = clients.signed_in(world.emails["admin"])
    listing = admin.get("/admin").text
    assert f'href="/admin/clinicians/{nurse}/second-factor-reset"' in listing
    assert "Dr B" not in listing  # team B's account
    page = admin.get(f"/admin/clinicians/{nurse}/second-factor-reset")
    assert page.status_code == 200
    text = page.text
    assert "Réinitialiser le second facteur du compte « Infirmière A » ?" in text
    for consequence in (
        "la personne en configure une nouvelle",
        "Ses codes de secours restants cessent de fonctionner",
        "Ses sessions ouvertes sont fermées",
        "Cette action est irréversible.",
    ):
        assert consequence in text
    assert f'data-url="/api/v1/clinicians/{nurse}/second-factor/reset"' in text
    # only a page: nothing is reset until the button is pressed
    assert _factor_state(world.db, nurse)[0]
    assert _reset_rows(world.db) == []


def test_a_sign_in_racing_the_reset_keeps_no_session(world: World, clients: Clients) -> None:
    """A sign-in whose code passed just before the reset commits opens its session just
    after it, out of the reset's reach: a session counts only when opened under the
    account's current second factor, so this one opens nothing, even once the colleague
    has enrolled a new authenticator."""
    db = world.db
    nurse_email = world.emails["coordinator"]
    nurse = _id(db, nurse_email)
    second_factor.code(db, nurse_email)  # enrolled
    admin = clients.signed_in(world.emails["admin"])
    assert admin.post(f"/api/v1/clinicians/{nurse}/second-factor/reset").status_code == 200
    with psycopg.connect(db, autocommit=True) as conn:
        late = open_session(conn, nurse, timedelta(hours=1))  # the racing sign-in's
    thief = clients.anonymous()
    thief.cookies.set(COOKIE, late)
    assert thief.get("/api/v1/me").status_code == 401
    second_factor.code(db, nurse_email)  # the colleague enrols a new authenticator
    assert thief.get("/api/v1/me").status_code == 401
    # a session opened under the new factor works
    assert clients.signed_in(nurse_email).get("/api/v1/me").status_code == 200
