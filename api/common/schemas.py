"""The REST API's request and response bodies (``/api/v1``): what the OpenAPI description
publishes. Times are UTC ISO 8601; each value's unit is in its field name or beside it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from vitals.gateway_config import BLE_ADDRESS_PATTERN

Role = Literal["coordinator", "physician", "admin"]
Priority = Literal["high", "medium", "low"]
AlertState = Literal["active", "acknowledged", "resolved"]
UiLanguage = Literal["fr", "en"]
PatientLanguage = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$", examples=["en"])]
Pseudonym = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$")]
GatewayId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$")]
DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{2,63}$")]
# a Bluetooth LE device address as scanners show it; kept in upper case
BleAddress = Annotated[
    str,
    Field(pattern=BLE_ADDRESS_PATTERN, examples=["C4:93:98:DB:C9:E5"]),
    AfterValidator(str.upper),
]


def _not_blank(value: str) -> str:
    """Text a person wrote: spaces around it dropped, and something must remain."""
    value = value.strip()
    if not value:
        raise PydanticCustomError("blank", "cannot be empty or only spaces")
    return value


def _blank_is_none(value: str | None) -> str | None:
    return (value.strip() or None) if value is not None else None


ShortText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_not_blank)]
Note = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(_not_blank)]
OptionalText = AfterValidator(_blank_is_none)

_ZONES = frozenset(available_timezones())
# every date a person enters lies within this span around today: a follow-up is weeks
# long, and a typo like year 9999 must not reach pages, exports or the alerts engine
YEARS_BACK = 5
YEARS_AHEAD = 1


def _span() -> tuple[date, date]:
    today = datetime.now(UTC).date()
    return today - timedelta(days=365 * YEARS_BACK + 1), today + timedelta(days=365 * YEARS_AHEAD)


def _out_of_span(earliest: date, latest: date) -> PydanticCustomError:
    return PydanticCustomError(
        "date_out_of_range",
        "must lie between {earliest} and {latest}",
        {"earliest": earliest.isoformat(), "latest": latest.isoformat()},
    )


def _bounded_day(value: date) -> date:
    earliest, latest = _span()
    if not earliest <= value <= latest:
        raise _out_of_span(earliest, latest)
    return value


def _bounded_time(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise PydanticCustomError(
            "datetime_without_offset", "needs a time zone offset (e.g. Z or +01:00)"
        )
    _bounded_day(value.astimezone(UTC).date())
    return value


Day = Annotated[date, AfterValidator(_bounded_day)]
Instant = Annotated[datetime, AfterValidator(_bounded_time)]


def _known_zone(value: str) -> str:
    if value not in _ZONES:
        raise PydanticCustomError(
            "unknown_zone",
            "unknown time zone {zone} (use an IANA name like Europe/Paris)",
            {"zone": value},
        )
    return value


def _no_nul(value: object) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise PydanticCustomError("nul_character", "text must not contain NUL characters")
    if isinstance(value, dict):
        for item in value.values():
            _no_nul(item)
    if isinstance(value, list):
        for item in value:
            _no_nul(item)


class Strict(BaseModel):
    """Request bodies: unknown fields are errors, and no text holds a NUL character
    (PostgreSQL cannot store one)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: object) -> object:
        _no_nul(data)
        return data


class LoginRequest(Strict):
    email: Annotated[str, Field(min_length=3, max_length=254)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    # the authenticator app's 6 digits, or one of the account's recovery codes
    code: Annotated[str | None, Field(max_length=32)] = None


class Me(BaseModel):
    clinician_id: int
    email: str
    display_name: str
    role: Role
    language: UiLanguage
    time_zone: str
    team_ids: list[int]


class SessionOut(BaseModel):
    clinician: Me
    csrf_token: str = Field(description="send as the X-CSRF-Token header on every change")


class SecondFactorResetOut(BaseModel):
    """A colleague's second factor, forgotten: they enrol a new one at next sign-in."""

    clinician_id: int
    display_name: str
    sessions_closed: int = Field(description="their sessions signed out now")
    recovery_codes_cleared: int = Field(description="their unused recovery codes, now void")
    security_keys_removed: int
    push_subscriptions_removed: int = Field(description="their browsers' alert notifications")


class LatestValue(BaseModel):
    metric: str
    unit: str
    value: float | None
    measured_at: datetime


class AskedReading(BaseModel):
    metric: str
    value: float


class PatientAskedOut(BaseModel):
    """What the patient's phone was asked for this alert, so that the team knows whether
    to wait for the patient or to call: a re-measurement request (an alert awaiting its
    confirmation) or the reminder a missing measurement followed."""

    kind: Literal["remeasure", "reminder"]
    metric: str | None = Field(default=None, description="the metric asked for (remeasure)")
    asked_at: datetime | None = Field(
        description="when the request or reminder was pushed; null when none was"
    )
    delivery: Literal[
        "sending",
        "delivered",
        "failed",
        "no_subscription",
        "already_done",
        "expired",
        "no_phone",
        "not_recorded",
    ] = Field(
        description="sending: push in flight; delivered: a phone got it; failed: no phone"
        " could be reached; no_subscription: notifications off, the app shows it when"
        " opened; already_done/expired: a reminder not sent (measured already, too late);"
        " no_phone: no enrolled phone, nothing asked; not_recorded: nothing recorded"
    )
    answered_at: datetime | None = Field(
        default=None, description="when the reading that answers the request was taken"
    )
    answer: list[AskedReading] = Field(
        default_factory=list, description="that reading (blood pressure: systolic, diastolic)"
    )


class OpenAlertBrief(BaseModel):
    alert_id: int
    rule_id: str
    priority: Priority
    state: AlertState
    opened_at: datetime
    condition_cleared_at: datetime | None = Field(
        default=None,
        description="set while the condition has cleared and a person has not"
        " resolved the alert yet",
    )
    confirmation_requested: bool = Field(
        default=False,
        description="opened by a single abnormal spot reading: a re-measurement is asked for",
    )
    patient_asked: PatientAskedOut | None = Field(
        default=None,
        description="for an alert awaiting confirmation: what the patient's phone was asked",
    )


class PendingAccessRequest(BaseModel):
    request_id: int
    kind: Literal["access", "portability"]
    received_on: date
    due_on: date = Field(description="received_on + 8 days (CSP L1111-7)")
    overdue: bool


class PatientSummary(BaseModel):
    patient_id: int
    pseudonym: str
    time_zone: str
    protocol: str
    attention_rank: int = Field(description="0 is the patient to look at first")
    alerts: list[OpenAlertBrief]
    news2_score: int | None
    news2_band: int | None = Field(description="0 low, 1 low-medium, 2 medium, 3 high")
    news2_complete: bool | None
    last_reading_at: datetime | None
    seconds_since_last_reading: float | None
    latest: list[LatestValue]
    battery_min_pct: float | None
    gateways_online: bool | None = Field(description="null when no gateway status is known")
    follow_up_ended: bool
    access_requests: list[PendingAccessRequest] = Field(
        default_factory=list, description="unanswered access or portability requests"
    )


class Dashboard(BaseModel):
    generated_at: datetime
    patients: list[PatientSummary]


class PhysicianContact(Strict):
    name: str | None = None
    email: EmailStr | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None


class UsualValues(Strict):
    """What the hospital recorded at discharge, the alert rules' reference for this
    patient (without them the rules learn the usual values from the first day's
    readings). A PUT replaces all five: a value left out is cleared. The ranges are the
    database's (migration 0013), so an implausible entry is a 422, never a 500."""

    discharge_sbp_mmhg: Annotated[float, Field(ge=60, le=250, allow_inf_nan=False)] | None = Field(
        default=None, description="usual systolic pressure at discharge, mmHg"
    )
    discharge_hr_bpm: Annotated[float, Field(ge=30, le=180, allow_inf_nan=False)] | None = Field(
        default=None, description="usual heart rate at discharge, /min"
    )
    discharge_weight_kg: Annotated[float, Field(ge=20, le=350, allow_inf_nan=False)] | None = Field(
        default=None, description="weight at discharge, kg"
    )
    beta_blocker: bool = Field(default=False, description="takes a beta-blocker")
    sleep_apnoea: bool = Field(
        default=False, description="known sleep apnoea or obesity hypoventilation"
    )


class PatientCreate(Strict):
    pseudonym: Pseudonym
    team_id: int
    language: PatientLanguage = "fr"
    time_zone: str = "Europe/Paris"
    home_country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    procedure: Annotated[str, Field(max_length=200)] | None = None
    surgery_date: Day | None = None
    discharged_at: Instant | None = None
    protocol: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{2,63}$")] = "digestive_surgery"
    home_physician: PhysicianContact = PhysicianContact()
    usual_values: UsualValues = UsualValues()

    _zone = field_validator("time_zone")(_known_zone)


class PatientOut(BaseModel):
    patient_id: int
    pseudonym: str
    team_id: int
    language: str
    time_zone: str
    home_country: str | None
    procedure: str | None
    surgery_date: date | None
    discharged_at: datetime | None
    follow_up_ended_at: datetime | None
    protocol: str
    home_physician: PhysicianContact
    usual_values: UsualValues = UsualValues()
    devices: list[EnrollmentOut]


class EndFollowUp(Strict):
    at: Instant | None = Field(default=None, description="default: now")
    note: Annotated[str | None, Field(max_length=4000), OptionalText] = None


class GatewayCreate(Strict):
    gateway_id: GatewayId
    team_id: int | None = Field(default=None, description="default: the admin's only team")


class GatewayCredentials(BaseModel):
    gateway_id: str
    mqtt_username: str
    mqtt_password: str = Field(description="shown once; only its hash is stored")


class DeviceCreate(Strict):
    device_id: DeviceId
    # the simulator's and gateways' names; the older underscored names stay accepted
    kind: Literal[
        "oximeter",
        "bp-cuff",
        "thermometer",
        "scale",
        "hr-patch",
        "glucose-meter",
        "pain-diary",
        "other",
        "pulse_oximeter",
        "bp_cuff",
        "hr_patch",
    ]
    gateway_id: GatewayId
    # what the gateway pairs with (its retained configuration lists it); none for a device
    # that is not paired over Bluetooth (a pain diary typed into the hub)
    ble_address: BleAddress | None = None


class DeviceOut(BaseModel):
    device_id: str
    kind: str
    gateway_id: str
    ble_address: str | None = None


class EnrollmentCreate(Strict):
    device_id: DeviceId
    start: Instant | None = Field(default=None, description="default: now")
    end: Instant | None = Field(default=None, description="default: open-ended")


class EnrollmentOut(BaseModel):
    enrollment_id: int
    device_id: str
    kind: str
    gateway_id: str
    start: datetime
    end: datetime | None
    # what the gateway last reported of a Bluetooth device (None until it did)
    model: str | None = None
    firmware_revision: str | None = None
    battery_pct: int | None = None
    last_seen: datetime | None = None
    clock_skew_s: int | None = None


class EnrollmentEnd(Strict):
    at: Instant | None = Field(default=None, description="default: now")


class ClinicianCreate(Strict):
    email: EmailStr
    display_name: Annotated[str, Field(min_length=1, max_length=120), AfterValidator(_not_blank)]
    role: Role
    password: Annotated[str, Field(min_length=12, max_length=1024)]
    team_ids: Annotated[list[int], Field(min_length=1)]
    language: UiLanguage = "fr"
    time_zone: str = "Europe/Paris"

    _zone = field_validator("time_zone")(_known_zone)


class TrendPoint(BaseModel):
    t: datetime
    n: int
    avg: float | None
    min: float | None
    max: float | None


class TrendSeries(BaseModel):
    metric: str
    label: str
    unit: str
    points: list[TrendPoint]


class Trends(BaseModel):
    patient_id: int
    start: datetime
    end: datetime
    bucket_s: int
    source: str
    series: list[TrendSeries]


class AlertEventOut(BaseModel):
    at: datetime
    transition: str
    actor: str
    note: str | None
    evidence: dict[str, object] | None


class AlertOut(BaseModel):
    alert_id: int
    patient_id: int
    rule_id: str
    kind: Literal["clinical", "technical"]
    priority: Priority
    state: AlertState
    opened_at: datetime
    condition_onset_at: datetime | None
    condition_cleared_at: datetime | None
    # opened after the fact: the episode was over before its readings arrived
    late: bool
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None
    escalation_tier: int
    evidence: dict[str, object]
    events: list[AlertEventOut]
    patient_asked: PatientAskedOut | None = Field(
        default=None,
        description="what the patient's phone was asked for this alert (null: nothing to say)",
    )


class NoteCreate(Strict):
    body: Note


class NoteOut(BaseModel):
    note_id: int
    at: datetime
    author: str
    body: str


class Timeline(BaseModel):
    patient_id: int
    alerts: list[AlertOut]
    notes: list[NoteOut]


class QuestionOut(BaseModel):
    """A home physician's question or news, and the team's answer once given."""

    question_id: int
    patient_id: int
    pseudonym: str
    kind: Literal["question", "news"]
    body: str
    asked_at: datetime
    physician: str | None
    answer: str | None
    answered_at: datetime | None
    answered_by: str | None


class AnswerCreate(Strict):
    answer: Note


class ResolveRequest(Strict):
    note: Note


class OverrideSet(Strict):
    rule_id: Annotated[str, Field(min_length=1, max_length=64)]
    param: Annotated[str, Field(min_length=1, max_length=64)]
    value: Annotated[float, Field(allow_inf_nan=False)]
    reason: Annotated[str, Field(min_length=3, max_length=1000), AfterValidator(_not_blank)]


class OverrideOut(BaseModel):
    rule_id: str
    rule_title: str
    metric: str | None
    param: str
    default_value: float
    value: float | None
    set_by: str | None
    set_at: datetime | None
    reason: str | None


class PushKeys(Strict):
    p256dh: Annotated[str, Field(min_length=16, max_length=200, pattern=r"^[A-Za-z0-9_=-]+$")]
    auth: Annotated[str, Field(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_=-]+$")]


class PushSubscriptionIn(Strict):
    # browsers send expirationTime and other fields; only these are used
    model_config = ConfigDict(extra="ignore")

    endpoint: Annotated[str, Field(pattern=r"^https?://", max_length=2000)]
    keys: PushKeys


class PushPublicKey(BaseModel):
    public_key: str | None = Field(description="VAPID application server key (base64url)")


class Message(BaseModel):
    detail: str


# the refusals every /api/v1 route documents (each answers a sentence)
ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": Message, "description": "not signed in"},
    403: {"model": Message, "description": "not allowed for this account"},
    404: {"model": Message, "description": "no such resource"},
}


PatientOut.model_rebuild()


ShareLanguage = Literal["fr", "en", "es", "it", "de", "pt", "ar", "zh"]


class ShareLinkCreate(Strict):
    language: ShareLanguage
    days: Annotated[int, Field(ge=1, le=90)] = 30
    second_code: bool = Field(default=True, description="a 6-digit code to send separately")
    units: Literal["metric", "us"] | None = Field(
        default=None, description="default: from the patient's home country"
    )
    recipient: Annotated[str | None, Field(max_length=200), OptionalText] = None
    consent_id: int | None = Field(
        default=None,
        description="the sharing consent naming the physician; default: the only one in force",
    )


class ShareLinkCreated(BaseModel):
    link_id: int
    url: str = Field(description="path of the shared page; the token is in it, shown once")
    code: str | None = Field(description="the second code, shown once")
    expires_at: datetime


class ShareLinkOut(BaseModel):
    link_id: int
    language: str
    units: str
    recipient: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime
    state: Literal["active", "expired", "revoked", "locked"]
    has_code: bool
    last_used_at: datetime | None
    uses: int


class DischargeInfo(Strict):
    discharge_instructions: Annotated[str | None, Field(max_length=4000), OptionalText] = None
    medications: Annotated[str | None, Field(max_length=4000), OptionalText] = None


class TeamContact(Strict):
    contact_name: Annotated[str, Field(max_length=200)] | None = None
    contact_phone: Annotated[str, Field(max_length=40)] | None = None
    contact_email: EmailStr | None = None
    contact_hours: Annotated[str | None, Field(max_length=200), OptionalText] = None


class AccessOut(BaseModel):
    at: datetime
    who: str
    action: str
    detail: dict[str, object]
    role: str | None = Field(
        default=None,
        description="coordinator, physician, admin, share_link (a home physician) or patient"
        " (the patient app)",
    )


ConsentKind = Literal["monitoring", "sharing", "transfer"]
NoticeLanguage = Literal["fr", "en", "es", "it", "de", "pt", "ar", "zh"]


class ConsentPhysician(Strict):
    name: ShortText
    email: EmailStr | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$", examples=["MA"])]


class ConsentCreate(Strict):
    """One decision of the patient, on the notice shown to them."""

    kind: ConsentKind
    decision: Literal["given", "refused"] = Field(
        default="given", description="refused: monitoring only"
    )
    notice_version: Annotated[int, Field(ge=1, le=999)]
    notice_language: NoticeLanguage
    decided_at: Instant | None = Field(default=None, description="default: now")
    physician: ConsentPhysician | None = Field(default=None, description="sharing: required")
    sharing_consent_id: int | None = Field(
        default=None, description="transfer: the sharing consent (physician) it covers"
    )


class ConsentWithdraw(Strict):
    note: Annotated[str | None, Field(max_length=1000), OptionalText] = None


class ConsentOut(BaseModel):
    consent_id: int
    kind: ConsentKind
    decision: Literal["given", "refused"]
    notice_version: int
    notice_language: str
    decided_at: datetime
    recorded_at: datetime
    recorded_by: str
    physician_name: str | None
    physician_email: str | None
    physician_country: str | None
    physician_in_eea: bool | None
    sharing_consent_id: int | None
    withdrawn_at: datetime | None
    withdrawn_by: str | None
    withdrawal_note: str | None
    in_force: bool


class Consents(BaseModel):
    patient_id: int
    monitoring: Literal["none", "given", "refused", "withdrawn"]
    records: list[ConsentOut] = Field(description="every record, newest first")


class ConsentRecorded(BaseModel):
    consent: ConsentOut
    enrollments_ended: int
    links_revoked: list[int]


class NoticeOut(BaseModel):
    kind: ConsentKind
    version: int
    language: str
    direction: Literal["ltr", "rtl"]
    title: str
    paragraphs: list[str]


class NoticeIndex(BaseModel):
    kind: ConsentKind
    current_version: int
    versions: list[int]
    languages: list[str]


class AccessRequestCreate(Strict):
    kind: Literal["access", "portability"]
    received_on: Day
    note: Annotated[str | None, Field(max_length=1000), OptionalText] = None


class AccessRequestOut(BaseModel):
    request_id: int
    kind: Literal["access", "portability"]
    received_on: date
    due_on: date
    overdue: bool
    note: str | None
    recorded_at: datetime
    recorded_by: str
    fulfilled_at: datetime | None
    fulfilled_by: str | None


class DocumentOut(BaseModel):
    """A stored document of the patient: an end-of-monitoring report (one per language)
    or a data export; ``pdf_url`` and ``fhir_url`` download it (each download audited)."""

    document_id: int
    kind: Literal["end_of_monitoring", "patient_export"]
    language: str
    period_start: datetime
    period_end: datetime
    created_at: datetime
    created_by: str
    current: bool = Field(description="false once a newer edition replaced it")
    pdf_bytes: int
    pdf_url: str
    fhir_url: str


class ExportOut(BaseModel):
    """The patient's data export (right of access and portability): a complete FHIR R4
    Bundle and a readable PDF in the patient's language."""

    document: DocumentOut
    resources: int = Field(description="entries of the FHIR Bundle")
    access_request_fulfilled: bool = Field(
        description="an open access request of the patient was marked fulfilled"
    )


class WoundPhotoOut(BaseModel):
    """A wound photo's record; the image itself is fetched from ``image_url`` with the
    clinician's session (never a URL that carries a credential)."""

    photo_id: int
    taken_at: datetime
    width_px: int
    height_px: int
    shared_with_physician: bool
    image_url: str


class WoundPhotoSharing(Strict):
    shared_with_physician: bool


class PatientAppLinkCreated(BaseModel):
    link_id: int
    url: str = Field(description="the enrollment link; the token is in it, shown once")
    qr_svg: str = Field(description="the same link as a QR code (SVG document), shown once")
    expires_at: datetime


class PatientAppLinkOut(BaseModel):
    link_id: int
    created_by: str
    created_at: datetime
    expires_at: datetime
    state: Literal["active", "used", "expired", "revoked"]
    used_at: datetime | None


class PatientPhoneOut(BaseModel):
    credential_id: int
    enrolled_at: datetime
    last_seen_at: datetime | None
    state: Literal["active", "revoked", "replaced", "expired", "ended"]
    revoked_at: datetime | None


class PatientApp(BaseModel):
    """The patient app's enrollment links and the phones they bound, newest first."""

    links: list[PatientAppLinkOut]
    phones: list[PatientPhoneOut]


PatientMessageKind = Literal[
    "measure_temperature", "we_will_call", "please_call_us", "go_to_emergency"
]
# and those the alerts engine sends (vitals/remeasure.py, vitals/battery.py)
PatientMessageKindSent = Literal[
    "measure_temperature",
    "we_will_call",
    "please_call_us",
    "go_to_emergency",
    "measure_spo2",
    "measure_pulse",
    "measure_blood_pressure",
    "measure_weight",
    "charge_oximeter",
    "charge_patch",
    "batteries_bp_cuff",
    "batteries_thermometer",
    "batteries_scale",
    "batteries_glucose_meter",
    "charge_device",
    "measure_vitals",
]


class PatientMessageCreate(Strict):
    kind: PatientMessageKind = Field(
        description="one of the templated messages, worded in the patient's language"
    )


class PatientMessageOut(BaseModel):
    message_id: int
    kind: PatientMessageKindSent
    text: str = Field(description="the message as the team reads it")
    sent_at: datetime
    sent_by: str = Field(description="the clinician, or the app for a re-measurement request")
    read_at: datetime | None = Field(description="when the patient marked it read")
    done_at: datetime | None = Field(
        None, description="a re-measurement request: when the reading came or the alert closed"
    )


class QuestionnaireAnswerOut(BaseModel):
    """One answer of the patient's questionnaire, coded (LOINC where one exists)."""

    item_id: str
    question: str = Field(description="the question, in the reader's language")
    answer: str = Field(description="the answer, in the reader's language")
    value: float
    code_system: str
    code: str
    notable: bool = Field(description="not the best answer the question allows")


class QuestionnaireResponseOut(BaseModel):
    response_id: int
    answered_at: datetime
    language: str = Field(description="the language the patient answered in")
    answers: list[QuestionnaireAnswerOut]


class SecurityKeyOptions(BaseModel):
    """What the page hands to ``navigator.credentials.create`` or ``.get`` (WebAuthn
    options as JSON: binary values in base64url)."""

    options: dict[str, Any]


class SecurityKeyCreate(Strict):
    # how the clinician calls it ("YubiKey", "this laptop")
    name: Annotated[str, Field(min_length=1, max_length=60), AfterValidator(_not_blank)]
    # the browser's PublicKeyCredential as JSON (binary values in base64url)
    credential: dict[str, Any]


class SecurityKeyOut(BaseModel):
    key_id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    transports: list[str]
