"""The team's templated messages on the patient's home screen, in the patient's words,
and the tap that says the patient read one (the team sees when)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.common.guards import Conn
from api.common.patient_messages import PatientMessage, mark_read, messages
from api.patient.access import PREFIX, Patient, audit_patient
from api.patient.view import NO_STORE, T_, PatientView

router = APIRouter(prefix=f"{PREFIX}/api", include_in_schema=False)

# each kind as the patient reads it
TEXTS = {
    "measure_temperature": T_("Please measure your temperature now."),
    # asked by the app itself when one measurement needs checking (vitals/remeasure.py)
    "measure_spo2": T_("Please measure your oxygen level (SpO2) now with your oximeter."),
    "measure_pulse": T_("Please measure your pulse now."),
    "measure_blood_pressure": T_("Please measure your blood pressure now."),
    "measure_weight": T_("Please weigh yourself now."),
    # asked by the app when one reading is off and the others are not fresh
    # (alerts/full_set.py; the protocols ask for these three)
    "measure_vitals": T_(
        "Please take all your measurements now, one after the other: temperature,"
        " blood pressure and oxygen level."
    ),
    # asked by the app itself when a device's battery is low (vitals/battery.py)
    "charge_oximeter": T_("The battery of your oximeter is low. Please charge it today."),
    "charge_patch": T_("The battery of your heart rate patch is low. Please charge it today."),
    "batteries_bp_cuff": T_(
        "The batteries of your blood pressure monitor are low. Please replace them today."
    ),
    "batteries_thermometer": T_(
        "The batteries of your thermometer are low. Please replace them today."
    ),
    "batteries_scale": T_("The batteries of your scale are low. Please replace them today."),
    "batteries_glucose_meter": T_(
        "The batteries of your glucose meter are low. Please replace them today."
    ),
    "charge_device": T_(
        "One of your devices has a low battery. Please charge it or replace its batteries today."
    ),
    "we_will_call": T_("We will call you shortly. Keep your phone with you."),
    "please_call_us": T_("Please call us."),
    "go_to_emergency": T_("Please go to the emergency department now."),
}
# a message read stays on the home screen for a day, so that the patient finds it again
KEEP_READ = timedelta(hours=24)


def for_home(conn: psycopg.Connection, patient_id: int) -> list[PatientMessage]:
    """Unread messages, and those read in the last day, newest first; a request to
    measure again no longer once the measurement came (or the alert closed), nor one to
    charge a device once it reported a good level again."""
    since = datetime.now(UTC) - KEEP_READ
    return [
        m
        for m in messages(conn, patient_id, 20)
        if m.done_at is None and (m.read_at is None or m.read_at > since)
    ]


@router.post("/messages/{message_id}/read")
def post_read(message_id: int, request: Request, conn: Conn, caller: Patient) -> JSONResponse:
    """The patient read this message (the first tap counts); answers when, as the
    patient's screen writes it."""
    view = PatientView(request, caller.language, caller.zone)
    read_at = mark_read(conn, caller.patient_id, message_id, caller.credential_id)
    if read_at is None:
        return JSONResponse(
            {"detail": view.t("This message does not exist.")}, 404, headers=NO_STORE
        )
    audit_patient(conn, caller, "patient_message_read", {"message_id": message_id})
    return JSONResponse(
        {"message_id": message_id, "read_at": read_at.isoformat(), "shown": view.at(read_at)},
        headers=NO_STORE,
    )
