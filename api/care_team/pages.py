"""The clinician pages (Jinja2, French by default): sign-in, dashboard, patient, and
administration. Pages only read; changes go through ``/api/v1`` from the page's forms
(app.js), so both share one implementation of every rule."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import available_timezones

from babel import Locale
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.care_team import colleagues, patient_app
from api.care_team.dashboard import dashboard, open_system_alerts
from api.care_team.login import (
    KEY_REFUSED,
    PasswordPassed,
    check_code,
    check_enrolment_code,
    check_password,
    check_security_key,
    open_signed_in,
    secret_box,
    set_session_cookie,
)
from api.common import documents, patient_data, questions, second_factor, security_keys
from api.common.consent_records import consent_records
from api.common.errors import refuse
from api.common.guards import Conn, audit, csrf_ok, read_patient, require_role, signed_in
from api.common.i18n import SHARE_LANGUAGE_NAMES, Clock, negotiate, viewer_locale
from api.common.labels import N_, Labels
from api.common.notices import NOTICE_KINDS, current_version
from api.common.patient_data import CHART_METRICS
from api.common.questionnaires import timeline_items
from api.common.sessions import COOKIE, Clinician, close_session, secure_cookies, session_clinician
from store.access_requests import access_requests, legal_today

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "postop_login_csrf"
# the sign-in whose password passed, waiting for its second factor
CHALLENGE_COOKIE = "postop_login_step"
LANG_COOKIE = "postop_lang"
Page = Annotated[Clinician, Depends(signed_in)]
# the kinds the simulator and the gateways use (labels.DEVICE_KINDS names each one)
DEVICE_KINDS = (
    "oximeter",
    "bp-cuff",
    "thermometer",
    "scale",
    "hr-patch",
    "glucose-meter",
    "pain-diary",
    "other",
)
# languages offered for a patient (any other code is accepted by the API)
PATIENT_LANGUAGES = (
    "fr",
    "en",
    "es",
    "it",
    "de",
    "pt",
    "ar",
    "zh",
    "nl",
    "pl",
    "ro",
    "ru",
    "tr",
    "uk",
    "he",
    "fa",
    "hi",
    "ja",
    "ko",
    "vi",
    "el",
    "sv",
    "da",
    "no",
    "fi",
    "cs",
    "hu",
)
ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))


def templates(request: Request) -> Jinja2Templates:
    t: Jinja2Templates = request.app.state.templates
    return t


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    who: Clinician | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    lang = who.language if who else _visitor_language(request)
    zone = who.time_zone if who else "Europe/Paris"
    catalog = request.app.state.catalogs[lang]
    page = templates(request).TemplateResponse(
        request,
        name,
        {
            "_": catalog.gettext,
            "lang": lang,
            "who": who,
            "viewer_zone": zone,
            "clock": Clock(
                lang, zone, viewer_locale(lang, zone, request.headers.get("accept-language"))
            ),
            "labels": Labels(lang, catalog),
            "now": datetime.now(UTC),
            **context,
        },
        status_code=status_code,
    )
    page.headers["Cache-Control"] = "no-store"
    return page


def error_page(request: Request, status_code: int, sentence: str) -> HTMLResponse:
    """A refusal as a page in the reader's language, with the way back (the API keeps its
    JSON answers)."""
    who: Clinician | None = getattr(request.state, "clinician", None)
    if who is None and request.cookies.get(COOKIE):
        try:
            with request.app.state.db.connection() as conn:
                who = session_clinician(conn, request.cookies[COOKIE])
        except Exception:  # the error page must render even when the database does not
            who = None
    return render(
        request, "error.html", {"status": status_code, "sentence": sentence}, who, status_code
    )


def _visitor_language(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if chosen in request.app.state.catalogs:
        return str(chosen)
    return negotiate(request.headers.get("accept-language"))


def _safe_next(target: str | None) -> str:
    # only a path on this site: never an open redirect
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    page = render(
        request,
        "login.html",
        {"login_csrf": token, "next": _safe_next(next), "error": None, "email": ""},
    )
    _login_csrf_cookie(request, page, token)
    if request.query_params.get("lang") in request.app.state.catalogs:
        page.set_cookie(
            LANG_COOKIE,
            request.query_params["lang"],
            samesite="lax",
            path="/",
            secure=secure_cookies(request),
        )
    return page


def _login_csrf_cookie(request: Request, page: Response, token: str) -> None:
    page.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path="/login",
        secure=secure_cookies(request),
    )


def _login_again(request: Request, next: str, email: str, message: str, status: int) -> Response:
    """The sign-in form again with a sentence, a fresh form token and no pending step."""
    fresh = secrets.token_urlsafe(24)
    page = render(
        request,
        "login.html",
        {"login_csrf": fresh, "next": _safe_next(next), "error": message, "email": email},
        status_code=status,
    )
    _login_csrf_cookie(request, page, fresh)
    page.delete_cookie(CHALLENGE_COOKIE, path="/login")
    return page


def _code_page(
    request: Request,
    conn: Conn,
    challenge: second_factor.Challenge,
    login_csrf: str,
    next: str,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The second step: the authenticator's code (and the security key, when the account
    has one), or its enrolment (QR code and secret) when the account has none yet."""
    enrol = challenge.enrol_secret is not None
    with_key = not enrol and security_keys.has_keys(conn, challenge.clinician_id)
    context: dict[str, Any] = {
        "login_csrf": login_csrf,
        "next": _safe_next(next),
        "error": error,
        "enrol": enrol,
        "security_key": with_key,
        "rp_id": request.app.state.relying_party.rp_id,
    }
    if challenge.enrol_secret is not None:
        uri = second_factor.provisioning_uri(challenge.enrol_secret, challenge.email)
        context["qr"] = second_factor.qr_svg_data_uri(uri)
        secret = challenge.enrol_secret
        context["secret_groups"] = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render(request, "login_code.html", context, status_code=status)


def _login_form_ok(request: Request, csrf_token: str) -> None:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        raise refuse(403, N_("The sign-in form expired; reload the page and try again."))


@router.post("/login")
def login_submit(
    request: Request,
    conn: Conn,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """The password; then the page asks for the second factor (or enrols it)."""
    _login_form_ok(request, csrf_token)
    catalog = request.app.state.catalogs[_visitor_language(request)]
    try:
        passed = check_password(request, conn, email, password)
    except HTTPException as exc:
        message = (
            catalog.gettext("Too many failed sign-ins; wait a few minutes.")
            if exc.status_code == 429
            else catalog.gettext("Wrong e-mail address or password.")
        )
        return _login_again(request, next, email, message, exc.status_code)
    box = secret_box(request)
    enrol_secret = None if passed.enrolled else second_factor.new_secret()
    token = second_factor.open_challenge(conn, box, passed.clinician_id, enrol_secret)
    challenge = second_factor.Challenge(passed.clinician_id, passed.email, enrol_secret)
    page = _code_page(request, conn, challenge, csrf_token, next)
    page.set_cookie(
        CHALLENGE_COOKIE,
        token,
        max_age=int(second_factor.CHALLENGE_LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        path="/login",
        secure=secure_cookies(request),
    )
    return page


@router.post("/login/code")
def login_code(
    request: Request,
    conn: Conn,
    code: Annotated[str, Form(max_length=32)],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """The second factor: a code of the authenticator app (or a recovery code); at
    enrolment, the first code of the new secret, then the recovery codes, shown once."""
    _login_form_ok(request, csrf_token)
    pending, challenge = _pending(request, conn)
    if challenge is None:
        return _sign_in_expired(request, next)
    passed = PasswordPassed(challenge.clinician_id, challenge.email, challenge.enrol_secret is None)
    recovery: list[str] = []
    try:
        if challenge.enrol_secret is not None:
            recovery = check_enrolment_code(request, conn, passed, challenge.enrol_secret, code)
            how = "enrolled"
        else:
            how = check_code(request, conn, passed, code)
    except HTTPException as exc:
        wrong = N_("Wrong or already used code.")
        return _step_refused(request, conn, exc, pending, challenge, csrf_token, next, wrong)
    return _signed_in(request, conn, pending, passed, how, recovery, next)


def _sign_in_expired(request: Request, next: str) -> Response:
    catalog = request.app.state.catalogs[_visitor_language(request)]
    message = catalog.gettext("The sign-in expired; enter your password again.")
    return _login_again(request, next, "", message, 401)


def _step_refused(
    request: Request,
    conn: Conn,
    exc: HTTPException,
    pending: str,
    challenge: second_factor.Challenge,
    csrf_token: str,
    next: str,
    refused: str,
) -> Response:
    """A second step refused: throttled, back to the password; otherwise the code page
    again with ``refused`` (English source), the pending sign-in counting one failure."""
    catalog = request.app.state.catalogs[_visitor_language(request)]
    if exc.status_code == 429:
        message = catalog.gettext("Too many failed sign-ins; wait a few minutes.")
        return _login_again(request, next, challenge.email, message, 429)
    second_factor.challenge_failed(conn, pending)
    message = catalog.gettext(refused)
    return _code_page(request, conn, challenge, csrf_token, next, message, 401)


def _signed_in(
    request: Request,
    conn: Conn,
    pending: str,
    passed: PasswordPassed,
    how: str,
    recovery: list[str],
    next: str,
) -> Response:
    """Both factors passed: the session, the language picked on the sign-in page, and
    the recovery codes to show once (after an enrolment) or the page asked for."""
    second_factor.close_challenge(conn, pending)
    token, who = open_signed_in(request, conn, passed, how)
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in request.app.state.catalogs and chosen != who.language:
        # the language picked on the sign-in page is the one the app goes on speaking
        conn.execute(
            "UPDATE clinicians SET language = %s WHERE clinician_id = %s",
            (chosen, who.clinician_id),
        )
    response: Response
    if recovery:
        response = render(
            request, "recovery_codes.html", {"codes": recovery, "next": _safe_next(next)}
        )
    else:
        response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(request, response, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    response.delete_cookie(CHALLENGE_COOKIE, path="/login")
    return response


def _pending(request: Request, conn: Conn) -> tuple[str, second_factor.Challenge | None]:
    pending = request.cookies.get(CHALLENGE_COOKIE, "")
    found = second_factor.find_challenge(conn, secret_box(request), pending) if pending else None
    return pending, found


@router.post("/login/key/options")
def login_key_options(
    request: Request, conn: Conn, csrf_token: Annotated[str, Form()] = ""
) -> JSONResponse:
    """Options for ``navigator.credentials.get``: the account's keys, and a challenge
    bound to this pending sign-in (a new one replaces the last)."""
    _login_form_ok(request, csrf_token)
    pending, challenge = _pending(request, conn)
    if challenge is None or challenge.enrol_secret is not None:
        raise refuse(401, N_("The sign-in expired; enter your password again."))
    if not security_keys.has_keys(conn, challenge.clinician_id):
        raise refuse(409, N_("This account has no security key; enter a code."))
    options = security_keys.authentication_options(
        conn,
        request.app.state.relying_party,
        challenge.clinician_id,
        security_keys.digest(pending),
    )
    return JSONResponse({"options": options}, headers={"Cache-Control": "no-store"})


@router.post("/login/key")
def login_key(
    request: Request,
    conn: Conn,
    credential: Annotated[str, Form(max_length=16_000)],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """The second factor as the security key's answer (the page's script fills the form
    after ``navigator.credentials.get``); a refusal shows the code page again."""
    _login_form_ok(request, csrf_token)
    pending, challenge = _pending(request, conn)
    if challenge is None or challenge.enrol_secret is not None:
        return _sign_in_expired(request, next)
    passed = PasswordPassed(challenge.clinician_id, challenge.email, True)
    try:
        parsed = json.loads(credential)
    except ValueError:
        parsed = None
    try:
        check_security_key(
            request,
            conn,
            passed,
            security_keys.digest(pending),
            parsed if isinstance(parsed, dict) else {},
        )
    except HTTPException as exc:
        return _step_refused(request, conn, exc, pending, challenge, csrf_token, next, KEY_REFUSED)
    return _signed_in(request, conn, pending, passed, "security_key", [], next)


@router.post("/logout")
def logout(
    request: Request, conn: Conn, who: Page, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    if not csrf_ok(who, csrf_token):
        raise refuse(403, N_("Your session changed; reload the page and try again."))
    close_session(conn, request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def published_titles(conn: Conn) -> dict[tuple[str, str], str]:
    """Each protocol's rule titles as the alerts engine published them (thresholds in
    them differ between protocols)."""
    rows = conn.execute("SELECT DISTINCT protocol, rule_id, rule_title FROM protocol_params")
    return {(r[0], r[1]): r[2] for r in rows}


@router.get("/")
def dashboard_page(request: Request, conn: Conn, who: Page) -> HTMLResponse:
    patients = dashboard(conn, list(who.team_ids))
    audit(conn, who, "dashboard_read", None, {"patients": [p.patient_id for p in patients]})
    system = open_system_alerts(conn, list(who.team_ids))
    asked = questions.open_for_teams(conn, list(who.team_ids))
    audit(
        conn,
        who,
        "questions_read",
        None,
        {"patients": sorted({q.patient_id for q in asked}), "questions": len(asked)},
    )
    return render(
        request,
        "dashboard.html",
        {
            "patients": patients,
            "system_alerts": system,
            "titles": published_titles(conn),
            "questions": asked,
        },
        who,
    )


@router.get("/fragments/dashboard-rows")
def dashboard_rows(request: Request, conn: Conn, who: Page) -> HTMLResponse:
    patients = dashboard(conn, list(who.team_ids))
    audit(conn, who, "dashboard_read", None, {"patients": [p.patient_id for p in patients]})
    context = {"patients": patients, "titles": published_titles(conn)}
    return render(request, "_dashboard_rows.html", context, who)


@router.get("/fragments/system-alerts")
def system_alerts_fragment(request: Request, conn: Conn, who: Page) -> HTMLResponse:
    """The banner of the team's open system alerts, for the dashboard to replace live
    (no patient data: nothing to audit)."""
    system = open_system_alerts(conn, list(who.team_ids))
    return render(request, "_system_alerts.html", {"system_alerts": system}, who)


@router.get("/patients/{patient_id}")
def patient_page(patient_id: int, request: Request, conn: Conn, who: Page) -> HTMLResponse:
    read_patient(conn, who, patient_id, "patient_read", page=True)
    patient = patient_data.patient(conn, patient_id)
    alerts = patient_data.alerts(conn, patient_id)
    notes = patient_data.notes(conn, patient_id)
    asked = questions.of_patient(conn, patient_id)
    items: list[dict[str, Any]] = [
        {"kind": "alert", "at": a.opened_at, "alert": a} for a in alerts
    ] + [{"kind": "note", "at": n.at, "note": n} for n in notes]
    items += timeline_items(request, conn, patient_id, who.language)  # the patient's answers
    timeline = sorted(items, key=lambda item: item["at"], reverse=True)
    present = {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT m.name FROM metrics m WHERE EXISTS (SELECT 1 FROM vitals v"
            " WHERE v.patient_id = %s AND v.metric_id = m.metric_id)",
            (patient_id,),
        )
    }
    # the questionnaire's answers show on the timeline; pain is charted as well
    present = {m for m in present if m in CHART_METRICS or not patient_data.reported(m)}
    kit = patient_data.kit_metrics(conn, patient_id)
    shown = [m for m in CHART_METRICS if m in present]
    overrides = patient_data.overrides(conn, patient_id)
    labels = Labels(who.language, request.app.state.catalogs[who.language])
    published = patient_data.rule_titles(conn, patient.protocol)
    discharge = conn.execute(
        "SELECT discharge_instructions, medications FROM patients WHERE patient_id = %s",
        (patient_id,),
    ).fetchone()
    assert discharge is not None
    return render(
        request,
        "patient.html",
        {
            "patient": patient,
            "timeline": timeline,
            "questions": asked,
            "overrides": overrides,
            "rule_titles": {
                a.rule_id: labels.rule(a.rule_id, published.get(a.rule_id, (None, None))[0])
                for a in alerts
            }
            | {o.rule_id: labels.rule(o.rule_id, o.rule_title) for o in overrides},
            "rule_metrics": {k: v[1] for k, v in published.items()},
            "latest": patient_data.latest_values(conn, patient_id, sorted(kit | present)),
            "has_devices": bool(patient.devices),
            "chart_metrics": shown,
            "chart_labels": {m: labels.long(m) for m in shown},
            "chart_units": {m: labels.unit(m) for m in shown},
            "chart_bands": patient_data.reference_bands(conn, patient_id, shown),
            "discharge": {"instructions": discharge[0], "medications": discharge[1]},
            "share_links": patient_data.share_links(conn, patient_id),
            "share_languages": SHARE_LANGUAGE_NAMES,
            "access_log": patient_data.access_log(conn, patient_id, 50),
            **consent_context(conn, patient_id, who.language),
            "documents": documents.listed(conn, patient_id),
            **patient_app.page_context(request, conn, patient_id, patient.language),
        },
        who,
    )


def consent_context(conn: Conn, patient_id: int, lang: str) -> dict[str, Any]:
    """What the patient page's consent panel shows (read under the page's own audit row)."""
    records = consent_records(conn, patient_id)
    sharing = [r for r in records.records if r.kind == "sharing" and r.in_force]
    acknowledged = {
        r.sharing_consent_id for r in records.records if r.kind == "transfer" and r.in_force
    }
    now = datetime.now(UTC)
    today = legal_today(now)
    territories = Locale.parse(lang).territories
    return {
        "consents": records,
        "sharing_in_force": sharing,
        "transfer_needed": [
            r for r in sharing if not r.physician_in_eea and r.consent_id not in acknowledged
        ],
        "notice_versions": {k: current_version(k) for k in NOTICE_KINDS},
        "notice_languages": SHARE_LANGUAGE_NAMES,
        "countries": sorted(
            ((c, n) for c, n in territories.items() if len(c) == 2 and c.isalpha()),
            key=lambda cn: cn[1],
        ),
        "access_requests": [(r, r.overdue(today)) for r in access_requests(conn, patient_id)],
        "today": today,
    }


@router.get("/alerts/{alert_id}")
def alert_link(alert_id: int, conn: Conn, who: Page) -> Response:
    """Where a push notification points: the alert on its patient's page. Another
    team's alert is answered like a missing one (its patient's id stays unsaid)."""
    row = conn.execute(
        "SELECT a.patient_id FROM alerts a JOIN patients p USING (patient_id)"
        " WHERE a.alert_id = %s AND p.team_id = ANY(%s)",
        (alert_id, list(who.team_ids)),
    ).fetchone()
    if row is None:
        raise refuse(404, N_("This alert does not exist."))
    return RedirectResponse(f"/patients/{int(row[0])}#alert-{alert_id}", status_code=303)


Admin = Annotated[Clinician, Depends(require_role("admin"))]


@router.get("/admin")
def admin_page(
    request: Request, conn: Conn, who: Admin, second_factor_reset: int | None = None
) -> HTMLResponse:
    """The administration page; ``second_factor_reset`` (where the reset's confirmation
    step sends the admin back) says whose second factor was just reset, if it is so."""
    teams = conn.execute(
        "SELECT team_id, name, contact_name, contact_phone, contact_email, contact_hours"
        " FROM care_teams WHERE team_id = ANY(%s) ORDER BY name",
        (list(who.team_ids),),
    ).fetchall()
    patients = conn.execute(
        "SELECT patient_id, pseudonym FROM patients WHERE team_id = ANY(%s)"
        " AND follow_up_ended_at IS NULL ORDER BY pseudonym",
        (list(who.team_ids),),
    ).fetchall()
    enrollments = conn.execute(
        "SELECT e.enrollment_id, e.patient_id, p.pseudonym, e.device_id, d.gateway_id,"
        " lower(e.valid) AS start FROM enrollments e JOIN patients p USING (patient_id)"
        " JOIN devices d USING (device_id) WHERE p.team_id = ANY(%s) AND upper_inf(e.valid)"
        " ORDER BY p.pseudonym, e.device_id",
        (list(who.team_ids),),
    ).fetchall()
    audit(conn, who, "admin_read", None, {"patients": [p[0] for p in patients]})
    labels = Labels(who.language, request.app.state.catalogs[who.language])
    protocols = sorted(
        (
            (r[0], labels.protocol(r[0]))
            for r in conn.execute("SELECT DISTINCT protocol FROM protocol_params")
        ),
        key=lambda p: p[1],
    )
    gateways = [r[0] for r in conn.execute("SELECT gateway_id FROM gateways ORDER BY 1")]
    members = colleagues.team_members(conn, who)
    just_reset = next(
        (
            m
            for m in members
            if m.clinician_id == second_factor_reset and m.second_factor_since is None
        ),
        None,
    )
    return render(
        request,
        "admin.html",
        {
            "teams": teams,
            "patients": patients,
            "enrollments": [
                dict(
                    zip(
                        (
                            "enrollment_id",
                            "patient_id",
                            "pseudonym",
                            "device_id",
                            "gateway_id",
                            "start",
                        ),
                        r,
                        strict=True,
                    )
                )
                for r in enrollments
            ],
            "protocols": protocols,
            "gateways": gateways,
            "device_kinds": [(k, labels.device_kind(k)) for k in DEVICE_KINDS],
            "languages": sorted(
                ((c, labels.language_name(c)) for c in PATIENT_LANGUAGES), key=lambda x: x[1]
            ),
            "zones": ZONES,
            "members": members,
            "just_reset": just_reset,
        },
        who,
    )


@router.get("/admin/clinicians/{clinician_id}/second-factor-reset")
def second_factor_reset_page(
    clinician_id: int, request: Request, conn: Conn, who: Admin
) -> HTMLResponse:
    """The confirmation step of a colleague's second-factor reset: what will happen,
    then the button (the reset itself is ``POST /api/v1/clinicians/{id}/second-factor/
    reset``). Refused, as the API would, for the admin's own account or another team's."""
    return render(
        request,
        "second_factor_reset.html",
        {"colleague": colleagues.colleague(conn, who, clinician_id)},
        who,
    )


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
