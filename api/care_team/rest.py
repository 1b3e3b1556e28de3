"""``/api/v1``: the JSON API behind the pages, for other clients too. Session cookie
authentication (``POST /api/v1/session``); every change carries the X-CSRF-Token header.
Every response that holds patient data writes an audit row."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, WithJsonSchema

from api.care_team import administration, colleagues
from api.care_team.consents import sharing_consent_for_link
from api.care_team.dashboard import dashboard
from api.care_team.documents import make_reports_after_end
from api.care_team.live import Broadcaster
from api.care_team.login import (
    check_code,
    check_password,
    open_signed_in,
    set_session_cookie,
    throttle_of,
)
from api.care_team.push_texts import push_texts
from api.common import patient_data
from api.common.database import Database
from api.common.errors import refuse
from api.common.guards import (
    Conn,
    Who,
    alert_patient,
    audit,
    get_db,
    patient_in_teams,
    read_patient,
    require_role,
    signed_in,
)
from api.common.labels import N_
from api.common.schemas import (
    ERRORS,
    AccessOut,
    AlertOut,
    ClinicianCreate,
    Dashboard,
    DeviceCreate,
    DeviceOut,
    DischargeInfo,
    EndFollowUp,
    EnrollmentCreate,
    EnrollmentEnd,
    EnrollmentOut,
    GatewayCreate,
    GatewayCredentials,
    Instant,
    LoginRequest,
    Me,
    Message,
    NoteCreate,
    NoteOut,
    OverrideOut,
    OverrideSet,
    PatientCreate,
    PatientOut,
    PushPublicKey,
    PushSubscriptionIn,
    ResolveRequest,
    SecondFactorResetOut,
    SessionOut,
    ShareLinkCreate,
    ShareLinkCreated,
    ShareLinkOut,
    TeamContact,
    Timeline,
    Trends,
    UsualValues,
)
from api.common.sessions import COOKIE, Clinician, client_address, close_session
from api.common.share_links import create_link, default_units, revoke
from store.alert_actions import AlertStateError, acknowledge, resolve
from store.overrides import set_override
from vitals.catalogue import BY_NAME
from vitals.push_endpoints import UnsafePushEndpoint, check_push_endpoint

router = APIRouter(prefix="/api/v1", responses=ERRORS)
Admin = Annotated[Clinician, Depends(require_role("admin"))]
Prescriber = Annotated[Clinician, Depends(require_role("physician", "admin"))]


def _known_metric(name: str) -> str:
    if name not in BY_NAME:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(BY_NAME)}")
    return name


MetricName = Annotated[
    str, AfterValidator(_known_metric), WithJsonSchema({"type": "string", "enum": list(BY_NAME)})
]
RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def me_of(who: Clinician) -> Me:
    return Me(
        clinician_id=who.clinician_id,
        email=who.email,
        display_name=who.display_name,
        role=who.role,  # type: ignore[arg-type]
        language=who.language,  # type: ignore[arg-type]
        time_zone=who.time_zone,
        team_ids=list(who.team_ids),
    )


@router.post(
    "/session",
    tags=["session"],
    responses={
        401: {"model": Message, "description": "wrong password or code"},
        403: {"model": Message, "description": "no second factor enrolled yet"},
        429: {"model": Message, "description": "too many failed logins"},
    },
)
def create_session(
    body: LoginRequest, request: Request, response: Response, conn: Conn
) -> SessionOut:
    """Sign in with the password and the second factor (``code``: the authenticator
    app's 6 digits, or a recovery code); sets the session cookie and returns the CSRF
    token for changes. An account without a second factor enrols on the sign-in page."""
    passed = check_password(request, conn, body.email, body.password)
    if not passed.enrolled:
        # the password was right: not a failure to count against the account
        throttle_of(request.app.state.settings).succeeded(
            conn, passed.email, client_address(request)
        )
        raise refuse(
            403,
            N_(
                "This account has no second factor yet: sign in once on the sign-in page"
                " to set up your authenticator app."
            ),
        )
    how = check_code(request, conn, passed, body.code or "", counted=True)
    token, who = open_signed_in(request, conn, passed, how)
    set_session_cookie(request, response, token)
    return SessionOut(clinician=me_of(who), csrf_token=who.csrf_token)


@router.delete("/session", tags=["session"], status_code=204)
def delete_session(request: Request, response: Response, conn: Conn, _who: Who) -> None:
    close_session(conn, request.cookies.get(COOKIE, ""))
    response.delete_cookie(COOKIE, path="/")


@router.get("/me", tags=["session"])
def me(who: Who) -> Me:
    return me_of(who)


@router.get("/dashboard", tags=["patients"])
def get_dashboard(conn: Conn, who: Who) -> Dashboard:
    """The team's followed patients, the one needing attention first."""
    patients = dashboard(conn, list(who.team_ids))
    audit(conn, who, "dashboard_read", None, {"patients": [p.patient_id for p in patients]})
    return Dashboard(generated_at=datetime.now(UTC), patients=patients)


@router.get("/patients/{patient_id}", tags=["patients"])
def get_patient(patient_id: int, conn: Conn, who: Who) -> PatientOut:
    read_patient(conn, who, patient_id, "patient_read")
    return patient_data.patient(conn, patient_id)


@router.get("/patients/{patient_id}/timeline", tags=["patients"])
def get_timeline(patient_id: int, conn: Conn, who: Who) -> Timeline:
    """Alerts with every transition and their evidence, and clinicians' notes."""
    read_patient(conn, who, patient_id, "timeline_read")
    return Timeline(
        patient_id=patient_id,
        alerts=patient_data.alerts(conn, patient_id),
        notes=patient_data.notes(conn, patient_id),
    )


@router.get("/patients/{patient_id}/trends", tags=["patients"])
def get_trends(
    patient_id: int,
    conn: Conn,
    who: Who,
    db: Annotated[Database, Depends(get_db)],
    metric: Annotated[list[MetricName], Query(min_length=1, max_length=12)],
    range_: Annotated[
        Literal["24h", "7d", "30d", "follow_up"] | None,
        Query(alias="range", description="a preset; or give start and end"),
    ] = None,
    start: Instant | None = None,
    end: Instant | None = None,
    max_points: Annotated[int, Query(ge=10, le=5000)] = 1000,
) -> Trends:
    """Time-bucketed series (count, mean, min, max per bucket) for charts."""
    read_patient(conn, who, patient_id, "trends_read", metrics=list(metric))
    now = datetime.now(UTC)
    if start is not None or end is not None:
        if start is None or end is None:
            raise refuse(422, N_("Give both start and end, or a range."))
        if start.tzinfo is None or end.tzinfo is None:
            raise refuse(422, N_("Start and end need a time zone offset (e.g. Z)."))
        if end <= start:
            raise refuse(422, N_("The end must come after the start."))
    elif range_ == "follow_up":
        start = patient_data.follow_up_start(conn, patient_id) or now - RANGES["30d"]
        end = now
    else:
        end = now
        start = now - RANGES[range_ or "24h"]
    return patient_data.trends(
        conn, db.flavour(conn), patient_id, list(metric), start, end, max_points
    )


@router.post("/patients/{patient_id}/notes", tags=["patients"], status_code=201)
def post_note(patient_id: int, body: NoteCreate, conn: Conn, who: Who) -> NoteOut:
    patient_in_teams(conn, who, patient_id)
    note = patient_data.add_note(conn, patient_id, who.clinician_id, body.body)
    audit(conn, who, "note_added", patient_id, {"note_id": note.note_id})
    return note


@router.get("/patients/{patient_id}/overrides", tags=["alerts"])
def get_overrides(patient_id: int, conn: Conn, who: Who) -> list[OverrideOut]:
    """Every overridable rule parameter of the patient's protocol, with its override."""
    read_patient(conn, who, patient_id, "overrides_read")
    return patient_data.overrides(conn, patient_id)


@router.put(
    "/patients/{patient_id}/overrides",
    tags=["alerts"],
    responses={422: {"model": Message, "description": "not a parameter of this protocol"}},
)
def put_override(
    patient_id: int, body: OverrideSet, conn: Conn, who: Prescriber
) -> list[OverrideOut]:
    """Set one rule parameter for this patient (physicians and admins; audited)."""
    patient_in_teams(conn, who, patient_id)
    if not patient_data.overridable(conn, patient_id, body.rule_id, body.param):
        raise refuse(422, N_("This is not an adjustable parameter of the patient's protocol."))
    check_override_value(conn, body)
    set_override(conn, patient_id, body.rule_id, body.param, body.value, who.actor, body.reason)
    return patient_data.overrides(conn, patient_id)


def check_override_value(conn: Conn, body: OverrideSet) -> None:
    """A threshold must be a value the metric can take; a rise or a fall must be
    positive (zero would alert on every reading)."""
    row = conn.execute(
        "SELECT m.plausible_min, m.plausible_max, m.ucum FROM protocol_params pp"
        " JOIN metrics m ON m.name = pp.metric WHERE pp.rule_id = %s AND pp.param = %s LIMIT 1",
        (body.rule_id, body.param),
    ).fetchone()
    if body.param == "threshold" and row is not None and not row[0] <= body.value <= row[1]:
        raise refuse(
            422,
            N_("A threshold must lie between %(low)s and %(high)s."),
            low=f"{row[0]:g}",
            high=f"{row[1]:g}",
        )
    if body.param == "rise_above" and body.value <= 0:
        raise refuse(422, N_("A rise threshold must be positive."))
    if body.param == "fall_above" and body.value <= 0:
        raise refuse(422, N_("A fall threshold must be positive."))


@router.post("/alerts/{alert_id}/acknowledge", tags=["alerts"])
def post_acknowledge(alert_id: int, conn: Conn, who: Who) -> AlertOut:
    patient_id = alert_patient(conn, who, alert_id)
    try:
        acknowledge(conn, alert_id, who.actor, int(time.time() * 1000))
    except AlertStateError:
        raise refuse(409, N_("This alert is no longer waiting for acknowledgement.")) from None
    return _alert(conn, who, patient_id, alert_id)


@router.post("/alerts/{alert_id}/resolve", tags=["alerts"])
def post_resolve(alert_id: int, body: ResolveRequest, conn: Conn, who: Who) -> AlertOut:
    patient_id = alert_patient(conn, who, alert_id)
    try:
        resolve(conn, alert_id, who.actor, body.note, int(time.time() * 1000))
    except AlertStateError:
        raise refuse(409, N_("This alert is resolved already.")) from None
    return _alert(conn, who, patient_id, alert_id)


@router.get("/alerts/{alert_id}", tags=["alerts"])
def get_alert(alert_id: int, conn: Conn, who: Who) -> AlertOut:
    patient_id = alert_patient(conn, who, alert_id)
    return _alert(conn, who, patient_id, alert_id)


def _alert(conn: Conn, who: Clinician, patient_id: int, alert_id: int) -> AlertOut:
    audit(conn, who, "alert_read", patient_id, {"alert_id": alert_id})
    return next(a for a in patient_data.alerts(conn, patient_id, 10_000) if a.alert_id == alert_id)


@router.get("/events", tags=["live"], response_class=StreamingResponse)
async def events(
    request: Request, who: Annotated[Clinician, Depends(signed_in)]
) -> StreamingResponse:
    """Server-Sent Events: ``alert`` and ``vitals`` name the patients whose data changed,
    ``system`` says the team's system alerts changed, ``resync`` asks the page to reload
    its data. No clinical content is sent."""
    live: Broadcaster = request.app.state.live
    db: Database = request.app.state.db

    def team_patients() -> set[int]:
        with db.connection() as conn:
            rows = conn.execute(
                "SELECT patient_id FROM patients WHERE team_id = ANY(%s)", (list(who.team_ids),)
            ).fetchall()
        return {int(r[0]) for r in rows}

    patients = await anyio.to_thread.run_sync(team_patients)
    return StreamingResponse(
        live.stream(patients, frozenset(who.team_ids)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/push/public-key", tags=["push"])
def push_public_key(request: Request, _who: Who) -> PushPublicKey:
    """The VAPID application server key browsers subscribe with (null: push disabled)."""
    return PushPublicKey(public_key=request.app.state.settings.api.vapid_public_key)


@router.get("/push/texts", tags=["push"])
def get_push_texts(request: Request, who: Who) -> dict[str, dict[str, str]]:
    """The alert notifications' words in the clinician's language, for the service
    worker: ``titles`` and ``bodies`` by the push's ``reason`` and ``priority`` codes."""
    catalogs = request.app.state.catalogs
    return push_texts(catalogs.get(who.language, catalogs["en"]))


@router.post(
    "/push/subscriptions",
    tags=["push"],
    status_code=201,
    responses={422: {"model": Message, "description": "not a public https push endpoint"}},
)
def post_subscription(body: PushSubscriptionIn, request: Request, conn: Conn, who: Who) -> Message:
    """Register this browser for alert notifications of each of the clinician's teams.
    The endpoint must be an https URL of a public push service (checked again when the
    alerts engine sends)."""
    settings = request.app.state.settings
    try:
        check_push_endpoint(body.endpoint, allow_private=settings.api.push_allow_private_endpoints)
    except UnsafePushEndpoint:
        raise refuse(422, N_("This push address is not a public https address.")) from None
    with conn.transaction():
        # one browser, one person: rows of another account or of a team left go
        conn.execute(
            "DELETE FROM push_subscriptions WHERE endpoint = %s"
            " AND (clinician_id IS DISTINCT FROM %s OR NOT (team_id = ANY(%s)))",
            (body.endpoint, who.clinician_id, list(who.team_ids)),
        )
        for team in who.team_ids:
            conn.execute(
                "INSERT INTO push_subscriptions"
                " (team_id, role, endpoint, p256dh, auth, clinician_id)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (endpoint, team_id) DO UPDATE SET"
                " role = EXCLUDED.role, p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,"
                " clinician_id = EXCLUDED.clinician_id",
                (team, who.role, body.endpoint, body.keys.p256dh, body.keys.auth, who.clinician_id),
            )
    return Message(detail="subscribed")


@router.get("/teams", tags=["admin"])
def get_teams(conn: Conn, who: Who) -> list[dict[str, object]]:
    rows = conn.execute(
        "SELECT team_id, name FROM care_teams WHERE team_id = ANY(%s) ORDER BY name",
        (list(who.team_ids),),
    ).fetchall()
    return [{"team_id": r[0], "name": r[1]} for r in rows]


@router.post("/patients", tags=["admin"], status_code=201)
def post_patient(body: PatientCreate, conn: Conn, who: Admin) -> PatientOut:
    patient_id = administration.create_patient(conn, who, body)
    return patient_data.patient(conn, patient_id)


@router.post("/gateways", tags=["admin"], status_code=201)
def post_gateway(body: GatewayCreate, conn: Conn, who: Admin) -> GatewayCredentials:
    """Register a home gateway; its MQTT password is in this response only."""
    return administration.create_gateway(conn, who, body)


@router.post("/devices", tags=["admin"], status_code=201)
def post_device(request: Request, body: DeviceCreate, conn: Conn, who: Admin) -> DeviceOut:
    """Register a device. One with a Bluetooth address is added to its gateway's retained
    configuration after the commit; with the broker unreachable the device is registered
    all the same and the configuration follows when the broker answers."""
    administration.create_device(conn, who, body)  # committed when it returns
    request.app.state.gateway_configs.wake()
    return DeviceOut(
        device_id=body.device_id,
        kind=body.kind,
        gateway_id=body.gateway_id,
        ble_address=body.ble_address,
    )


@router.post("/patients/{patient_id}/enrollments", tags=["admin"], status_code=201)
def post_enrollment(
    patient_id: int, body: EnrollmentCreate, conn: Conn, who: Admin
) -> EnrollmentOut:
    patient_in_teams(conn, who, patient_id)
    return administration.create_enrollment(conn, who, patient_id, body)


@router.post("/patients/{patient_id}/enrollments/{enrollment_id}/end", tags=["admin"])
def post_enrollment_end(
    patient_id: int, enrollment_id: int, body: EnrollmentEnd, conn: Conn, who: Admin
) -> PatientOut:
    patient_in_teams(conn, who, patient_id)
    administration.end_enrollment(
        conn, who, patient_id, enrollment_id, body.at or datetime.now(UTC)
    )
    return patient_data.patient(conn, patient_id)


@router.post("/patients/{patient_id}/end-follow-up", tags=["admin"])
def post_end_follow_up(
    patient_id: int, body: EndFollowUp, request: Request, conn: Conn, who: Admin
) -> PatientOut:
    """End the follow-up; the end-of-monitoring report is made at once (its documents
    are listed under ``/documents``)."""
    patient_in_teams(conn, who, patient_id)
    administration.end_follow_up(conn, who, patient_id, body.at or datetime.now(UTC), body.note)
    make_reports_after_end(request, conn, who, patient_id)
    return patient_data.patient(conn, patient_id)


@router.post("/clinicians", tags=["admin"], status_code=201)
def post_clinician(body: ClinicianCreate, conn: Conn, who: Admin) -> Message:
    """Create an account in the admin's teams; it sets up its second factor (an
    authenticator app) at its first sign-in on the page."""
    clinician_id = administration.create_account(conn, who, body)
    return Message(detail=f"account {clinician_id} created")


@router.post(
    "/clinicians/{clinician_id}/second-factor/reset",
    tags=["admin"],
    responses={
        403: {"model": Message, "description": "not an admin, or the admin's own account"},
        404: {"model": Message, "description": "no such colleague in the admin's teams"},
    },
)
def post_second_factor_reset(clinician_id: int, conn: Conn, who: Admin) -> SecondFactorResetOut:
    """Forget a colleague's second factor (a lost phone): their authenticator and
    recovery codes stop working, their sessions and their browsers' alert notifications
    end now, and they enrol a new
    authenticator at their next sign-in. Not for the admin's own account (recovery codes
    are for that). Audited."""
    target, forgotten = colleagues.reset_second_factor(conn, who, clinician_id)
    return SecondFactorResetOut(
        clinician_id=target.clinician_id,
        display_name=target.display_name,
        sessions_closed=forgotten.sessions_closed,
        recovery_codes_cleared=forgotten.recovery_codes_cleared,
        security_keys_removed=forgotten.security_keys_removed,
        push_subscriptions_removed=forgotten.push_subscriptions_removed,
    )


@router.post(
    "/patients/{patient_id}/share-links",
    tags=["sharing"],
    status_code=201,
    responses={409: {"model": Message, "description": "no sharing consent in force"}},
)
def post_share_link(
    patient_id: int, body: ShareLinkCreate, request: Request, conn: Conn, who: Who
) -> ShareLinkCreated:
    """A read-only link for the home physician; token and code are in this answer only.
    Made under a sharing consent in force naming the physician (409 otherwise); a
    physician outside the EU/EEA also needs the transfer acknowledged."""
    patient_in_teams(conn, who, patient_id)
    row = conn.execute(
        "SELECT home_country, follow_up_ended_at IS NOT NULL FROM patients WHERE patient_id = %s",
        (patient_id,),
    ).fetchone()
    assert row is not None
    units = body.units or default_units(row[0])
    with conn.transaction():
        # under the patient's lock: a withdrawal of the consent waits, then revokes this link
        conn.execute("SELECT 1 FROM patients WHERE patient_id = %s FOR UPDATE", (patient_id,))
        consent = sharing_consent_for_link(conn, patient_id, body.consent_id)
        link = create_link(
            conn,
            patient_id,
            who.clinician_id,
            body.language,
            units,
            timedelta(days=body.days),
            body.second_code,
            body.recipient or consent.physician_name,
            consent.consent_id,
        )
        audit(
            conn,
            who,
            "share_link_created",
            patient_id,
            {
                "link_id": link.link_id,
                "language": body.language,
                "days": body.days,
                "second_code": body.second_code,
                "consent_id": consent.consent_id,
            },
        )
    expires = conn.execute(
        "SELECT expires_at FROM share_links WHERE link_id = %s", (link.link_id,)
    ).fetchone()
    assert expires is not None
    return ShareLinkCreated(
        link_id=link.link_id,
        url=request.app.state.settings.api.link(f"/s/{link.token}"),
        code=link.code,
        expires_at=expires[0],
    )


@router.get("/patients/{patient_id}/share-links", tags=["sharing"])
def get_share_links(patient_id: int, conn: Conn, who: Who) -> list[ShareLinkOut]:
    read_patient(conn, who, patient_id, "share_links_read")
    return patient_data.share_links(conn, patient_id)


@router.post("/patients/{patient_id}/share-links/{link_id}/revoke", tags=["sharing"])
def post_revoke_share_link(patient_id: int, link_id: int, conn: Conn, who: Who) -> Message:
    patient_in_teams(conn, who, patient_id)
    if not revoke(conn, link_id, patient_id, who.clinician_id):
        raise refuse(404, N_("This link is no longer active."))
    audit(conn, who, "share_link_revoked", patient_id, {"link_id": link_id})
    return Message(detail="revoked")


@router.put("/patients/{patient_id}/discharge", tags=["patients"])
def put_discharge(patient_id: int, body: DischargeInfo, conn: Conn, who: Prescriber) -> PatientOut:
    """Discharge instructions and medications, shown to the home physician."""
    patient_in_teams(conn, who, patient_id)
    conn.execute(
        "UPDATE patients SET discharge_instructions = %s, medications = %s WHERE patient_id = %s",
        (body.discharge_instructions, body.medications, patient_id),
    )
    audit(conn, who, "discharge_info_set", patient_id)
    return patient_data.patient(conn, patient_id)


@router.put("/patients/{patient_id}/usual-values", tags=["patients"])
def put_usual_values(patient_id: int, body: UsualValues, conn: Conn, who: Who) -> PatientOut:
    """The usual values recorded at discharge (systolic pressure, heart rate, weight) and
    what changes how the rules read them (beta-blocker, known sleep apnoea). Any
    clinician of the patient's team: the coordinator usually enters them at discharge."""
    patient_in_teams(conn, who, patient_id)
    administration.set_usual_values(conn, who, patient_id, body)
    return patient_data.patient(conn, patient_id)


@router.put("/teams/{team_id}/contact", tags=["admin"])
def put_team_contact(team_id: int, body: TeamContact, conn: Conn, who: Admin) -> Message:
    """How home physicians reach the team (shown on shared pages)."""
    if team_id not in who.team_ids:
        raise refuse(403, N_("You are not a member of this care team."))
    conn.execute(
        "UPDATE care_teams SET contact_name = %s, contact_phone = %s, contact_email = %s,"
        " contact_hours = %s WHERE team_id = %s",
        (body.contact_name, body.contact_phone, body.contact_email, body.contact_hours, team_id),
    )
    return Message(detail="saved")


@router.get("/patients/{patient_id}/access-log", tags=["patients"])
def get_access_log(patient_id: int, conn: Conn, who: Who) -> list[AccessOut]:
    """Who read or changed this patient's data, newest first (clinicians and links)."""
    read_patient(conn, who, patient_id, "access_log_read")
    return patient_data.access_log(conn, patient_id)
