"""Reminders on the patient's phone: the app subscribes the phone to Web Push (the VAPID
key the alerts engine signs with), and the service worker asks here, in the patient's
language, for the words of a reminder when one arrives (the push itself names only the
reminder). The alerts engine sends them (``alerts/reminders.py``), and the requests to
measure again (``alerts/remeasure.py``) and to charge a device
(``alerts/battery_requests.py``), worded from the same texts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.common.guards import Conn
from api.common.schemas import PushSubscriptionIn
from api.patient.access import PREFIX, Patient, audit_patient
from api.patient.messages import TEXTS as MESSAGE_TEXTS
from api.patient.screen import caller_view
from api.patient.view import NO_STORE, T_
from vitals.battery import CHARGE_KINDS
from vitals.push_endpoints import UnsafePushEndpoint, check_push_endpoint
from vitals.remeasure import REQUEST_KINDS

router = APIRouter(prefix=PREFIX, include_in_schema=False)

TITLE = T_("My follow-up")
# by the reminder ids of the protocols (alerts/protocols/*.yaml); "default" for another
TEXTS = {
    "morning_weight": T_(
        "Time to weigh yourself: after the toilet, before breakfast, in light clothes."
    ),
    "morning_vitals": T_("Time to measure your blood pressure and your temperature."),
    "evening_questionnaire": T_("Time to answer today's questions about how you feel."),
    "default": T_("Your care team reminds you of your follow-up."),
}
NOT_PUBLIC = T_("Reminders cannot be turned on in this browser.")
TURNED_ON = T_("Reminders are on.")


@router.get("/api/push/public-key")
def push_public_key(request: Request, caller: Patient) -> JSONResponse:
    """The application server key the phone subscribes with (null: no reminders)."""
    key = request.app.state.settings.api.vapid_public_key
    return JSONResponse({"public_key": key}, headers=NO_STORE)


@router.post("/api/push/subscriptions", status_code=201)
def post_push_subscription(
    body: PushSubscriptionIn, request: Request, conn: Conn, caller: Patient
) -> JSONResponse:
    """This phone hears its reminders (one subscription per browser: subscribing again
    moves it to this phone's credential)."""
    view = caller_view(request, conn, caller)
    settings = request.app.state.settings
    try:
        check_push_endpoint(body.endpoint, allow_private=settings.api.push_allow_private_endpoints)
    except UnsafePushEndpoint:
        return JSONResponse({"detail": view.t(NOT_PUBLIC)}, 422, headers=NO_STORE)
    with conn.transaction():
        conn.execute(
            "INSERT INTO patient_push_subscriptions"
            " (patient_id, credential_id, endpoint, p256dh, auth) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (endpoint) DO UPDATE SET patient_id = EXCLUDED.patient_id,"
            " credential_id = EXCLUDED.credential_id, p256dh = EXCLUDED.p256dh,"
            " auth = EXCLUDED.auth",
            (
                caller.patient_id,
                caller.credential_id,
                body.endpoint,
                body.keys.p256dh,
                body.keys.auth,
            ),
        )
        audit_patient(conn, caller, "reminders_subscribed")
    return JSONResponse({"detail": view.t(TURNED_ON)}, 201, headers=NO_STORE)


@router.get("/api/reminders/texts")
def reminder_texts(request: Request, conn: Conn, caller: Patient) -> JSONResponse:
    """The reminders' words in the patient's language, for the service worker, and those
    of the requests to measure again or to charge a device (``remeasure`` and
    ``battery`` pushes, by their kind)."""
    view = caller_view(request, conn, caller)
    texts = {key: {"title": view.t(TITLE), "body": view.t(text)} for key, text in TEXTS.items()}
    texts |= {
        kind: {"title": view.t(TITLE), "body": view.t(MESSAGE_TEXTS[kind])}
        for kind in REQUEST_KINDS + CHARGE_KINDS
    }
    return JSONResponse(texts, headers=NO_STORE)
