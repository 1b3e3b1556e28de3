"""How values read on the clinician pages: short metric labels (translated), values with
their unit and the catalogue's decimals, ages ("4 min ago"), evidence numbers. The
strings are marked with ``N_`` for extraction into the catalogs and translated at render
time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_timedelta
from babel.numbers import format_decimal
from babel.support import NullTranslations
from babel.units import format_unit

from api.common.schemas import AskedReading
from vitals.catalogue import BY_NAME


def N_(message: str) -> str:  # gettext's conventional name for "mark only"
    return message


SHORT = {
    "heart_rate_bpm": N_("HR"),
    "spo2_pct": N_("SpO2"),
    "temp_c": N_("Temp"),
    "bp_systolic_mmhg": N_("SBP"),
    "bp_diastolic_mmhg": N_("DBP"),
    "bp_mean_mmhg": N_("MAP"),
    "resp_rate_per_min": N_("RR"),
    "weight_kg": N_("Weight"),
    "glucose_mmol_l": N_("Glucose"),
    "steps_count": N_("Steps"),
    "pain_score": N_("Pain"),
    "pain_movement_score": N_("Pain (movement)"),
    "battery_pct": N_("Battery"),
}
LONG = {
    "heart_rate_bpm": N_("Heart rate"),
    "spo2_pct": N_("Oxygen saturation (SpO2)"),
    "temp_c": N_("Body temperature"),
    "bp_systolic_mmhg": N_("Systolic blood pressure"),
    "bp_diastolic_mmhg": N_("Diastolic blood pressure"),
    "bp_mean_mmhg": N_("Mean arterial pressure"),
    "resp_rate_per_min": N_("Respiratory rate"),
    "weight_kg": N_("Body weight"),
    "glucose_mmol_l": N_("Blood glucose"),
    "steps_count": N_("Steps"),
    "pain_score": N_("Pain score (0-10)"),
    "pain_movement_score": N_("Pain on movement (0-10)"),
    "battery_pct": N_("Device battery level"),
}
# UCUM codes as people write them (annotations like {steps} become a translated word)
SHOWN_UNIT = {"Cel": "°C", "mm[Hg]": "mmHg", "{score}": "/10", "/min": "/min"}
UNIT_WORDS = {"{steps}": N_("steps")}
# what each alert rule watches, by rule id: the protocols' titles (alerts/protocols/*.yaml),
# so the French catalog translates them; a protocol may publish another threshold in its
# own title (protocol_params), which is then translated if the catalog knows it
RULE_TITLES = {
    "spo2_critical": N_("SpO2 below 88% (84% on scale 2) for 3 min"),
    "spo2_low": N_(
        "SpO2 below 92% (88% on scale 2) for 10 min; at night, below the patient's usual"
        " nights for 30 min"
    ),
    "spo2_spot_low": N_("SpO2 below 90% (86% on scale 2) at a spot check"),
    "hr_critical": N_("Heart rate above 140/min for 5 min"),
    "hr_high": N_("Heart rate above 110/min (15 min, or a confirmed spot check)"),
    "hr_low": N_(
        "Heart rate too low (below 40/min awake, below the patient's usual nights asleep)"
    ),
    "hr_above_baseline": N_("Heart rate 25/min (and 30%) above the patient's usual"),
    "sbp_low": N_("Systolic pressure below 90 mmHg"),
    "sbp_below_usual": N_("Systolic pressure 30 mmHg (and 20%) below the patient's usual"),
    "rr_high": N_("Respiratory rate above 24/min for 15 min"),
    "fever": N_("Temperature 38.0 °C or above"),
    "temp_rising": N_("Temperature rising over 12 h"),
    "temp_above_usual": N_("Temperature more than 1.1 °C above the patient's usual"),
    "low_grade_fever": N_("Temperature above 37.5 °C, confirmed"),
    "sepsis_screen": N_("Fever or low temperature with a raised pulse (possible infection)"),
    "af_suspected": N_("Irregular heart rhythm (possible atrial fibrillation)"),
    "weight_gain": N_("Weight gain above 2 kg over 3 days"),
    "weight_loss": N_("Weight loss above 3 kg (or 3%) over 3 days"),
    "fluid_overload": N_("Weight up 1 kg over a week with lower saturation or a faster pulse"),
    "dehydration": N_(
        "Weight down 1 kg (or 1.5%) over 3 days with a faster pulse or lower blood pressure"
    ),
    "news2": N_("NEWS2 clinical risk"),
    "shock_index": N_("Shock index (pulse / systolic) above 1.0"),
    # what the patient reports in the daily questionnaire
    "pain_high": N_("Pain at rest 7/10 or more reported"),
    "pain_rising": N_("Reported pain up 3 points or more since the day before"),
    "wound_fever": N_("Wound signs reported with fever (possible wound infection)"),
    "calf_pulse": N_("Calf pain or swelling reported with a rising pulse (possible thrombosis)"),
    "calf_reported": N_("Calf pain or swelling reported (possible thrombosis)"),
    "breathless_new": N_("New breathlessness reported"),
    "no_spo2": N_("No SpO2 reading for 8 waking hours"),
    "no_weight": N_("No weight for 36 h"),
    "no_bp": N_("No blood pressure since the morning reminder"),
    "no_temp": N_("No temperature since the morning reminder"),
    "gateway_offline": N_("Home gateway offline for 30 min"),
    "battery_low": N_("A device battery at or below 5%"),
    "implausible_rate": N_("Many implausible readings"),
}
# titles of earlier protocol versions, still on alerts opened before an upgrade
OTHER_TITLES = (
    N_("Heart rate above 110/min for 15 min"),
    N_("Heart rate above 120/min for 15 min"),
    N_("SpO2 below 88% for 3 min"),
    N_("SpO2 below 92% for 10 min"),
    N_("Temperature above 38.0 °C"),
    N_("Heart rate well above the patient's baseline"),
    N_("No SpO2 reading for 10 h"),
    N_("Heart rate below 40/min for 10 min"),
    N_("A device battery is below 15%"),
    N_("Weight loss above 2 kg (or 2%) over 3 days"),
    N_("Weight up 1.5 kg over a week with lower saturation or a faster pulse"),
)
PROTOCOL_TITLES = {
    "digestive_surgery": N_("Digestive and oncologic surgery"),
    "cardiac_surgery": N_("Cardiac surgery"),
    "orthopaedic_surgery": N_("Orthopaedic surgery (joint replacement)"),
}
PARAMS = {
    "threshold": N_("Threshold"),
    "slope_per_h_above": N_("Rise per hour above"),
    "rise_above": N_("Rise above"),
    "fall_above": N_("Fall above"),
    "change_abs": N_("Change from the patient's usual value above"),
    "hr_above": N_("Pulse above"),
    "spo2_scale": N_("SpO2 scale (1 usual, 2 chronic respiratory failure)"),
    "alert_from_band": N_("Alert from risk band (1 low-medium, 2 medium, 3 high)"),
    "at_or_above": N_("Reported value at or above"),
    "rise_by": N_("Rise since the day before of at least"),
}
# device kinds: the simulator's and gateway's names, and the older API names
DEVICE_KINDS = {
    "oximeter": N_("Pulse oximeter"),
    "bp-cuff": N_("Blood-pressure cuff"),
    "thermometer": N_("Thermometer"),
    "scale": N_("Scale"),
    "hr-patch": N_("Heart-rate patch"),
    "glucose-meter": N_("Glucose meter"),
    "pain-diary": N_("Pain diary"),
    "other": N_("Other device"),
    "pulse_oximeter": N_("Pulse oximeter"),
    "bp_cuff": N_("Blood-pressure cuff"),
    "hr_patch": N_("Heart-rate patch"),
}
# what each kind measures, for the patient page's latest values
KIND_METRICS = {
    "oximeter": ("spo2_pct", "heart_rate_bpm"),
    "pulse_oximeter": ("spo2_pct", "heart_rate_bpm"),
    "bp-cuff": ("bp_systolic_mmhg", "bp_diastolic_mmhg", "heart_rate_bpm"),
    "bp_cuff": ("bp_systolic_mmhg", "bp_diastolic_mmhg", "heart_rate_bpm"),
    "thermometer": ("temp_c",),
    "scale": ("weight_kg",),
    "hr-patch": ("heart_rate_bpm", "resp_rate_per_min", "steps_count"),
    "hr_patch": ("heart_rate_bpm", "resp_rate_per_min", "steps_count"),
    "glucose-meter": ("glucose_mmol_l",),
    "pain-diary": ("pain_score",),
}
# evidence the alerts engine stores, by key: a label, and how to read the number; listed
# in this order (the database keeps its own), each sign before the patient's usual of it
EVIDENCE = {
    "value": N_("worst value"),
    "threshold": N_("threshold"),
    "shock_index": N_("shock index"),
    "slope_per_h": N_("rise per hour"),
    "rise": N_("rise"),
    "deviation": N_("deviation from baseline"),
    "silent_s": N_("no reading for"),
    "offline_s": N_("offline for"),
    "battery_pct": N_("battery"),
    "implausible": N_("implausible readings"),
    "stored": N_("readings stored"),
    "score": N_("score"),
    "band": N_("risk band"),
    "complete": N_("all parameters measured"),
    "late": N_("found late"),
    "fall": N_("fall"),
    "usual": N_("patient's usual value"),
    "confirmation_requested": N_("awaiting a confirmation measurement"),
    "weight_rise": N_("weight gained"),
    "weight_fall": N_("weight lost"),
    "temp_c": N_("temperature"),
    "pulse": N_("pulse"),
    "usual_pulse": N_("patient's usual pulse"),
    "sbp": N_("systolic pressure"),
    "usual_sbp": N_("patient's usual systolic pressure"),
    "spo2": N_("saturation"),
    "usual_spo2": N_("patient's usual saturation"),
    "irregularity": N_("pulse irregularity"),
    "irregular_readings": N_("readings flagged irregular"),
    "scored_params": N_("parameters scored"),
    "last_reading_ms": N_("last reading"),
    "reminder_missed": N_("reminder not acted on"),
    "also_missing": N_("also missing"),
    "still_missing": N_("still missing"),
    "signs_reported": N_("wound signs reported"),
    "fever_reported": N_("feverish or chills reported"),
    "at_rest": N_("at rest"),
}
EVIDENCE_RANK = {key: rank for rank, key in enumerate(EVIDENCE)}
# what the access log records, as the patient page lists it
ACTIONS = {
    "patient_read": N_("opened the patient page"),
    "timeline_read": N_("read the alerts and notes"),
    "trends_read": N_("read the trends"),
    "questionnaires_read": N_("read the questionnaire answers"),
    "overrides_read": N_("read the thresholds"),
    "access_log_read": N_("read the access log"),
    "share_links_read": N_("read the shared links"),
    "alert_read": N_("read an alert"),
    "dashboard_read": N_("read the patient list"),
    "admin_read": N_("opened the administration page"),
    "note_added": N_("added a note"),
    "discharge_info_set": N_("changed the discharge information"),
    "usual_values_set": N_("changed the usual values at discharge"),
    "follow_up_ended": N_("ended the follow-up"),
    "patient_created": N_("created the patient"),
    "device_enrolled": N_("enrolled a device"),
    "device_unenrolled": N_("ended a device's enrolment"),
    "share_link_created": N_("made a shared link"),
    "share_link_revoked": N_("revoked a shared link"),
    "share_view": N_("viewed the shared page"),
    "share_trends": N_("viewed the shared trends"),
    "share_print": N_("printed the summary"),
    "share_fhir": N_("downloaded the FHIR export"),
    "share_code_wrong": N_("entered a wrong second code"),
    "share_code_locked": N_("locked the link (too many wrong codes)"),
    "threshold_override": N_("changed a threshold"),
    "share_question": N_("sent a question to the team"),
    "share_question_refused": N_("sent too many messages (refused)"),
    "questions_read": N_("read the home physicians' questions"),
    "question_answered": N_("answered the home physician"),
    "consents_read": N_("read the consents"),
    "consent_recorded": N_("recorded a consent"),
    "consent_withdrawn": N_("recorded a withdrawal of consent"),
    "access_requests_read": N_("read the access requests"),
    "access_request_recorded": N_("recorded an access request"),
    "access_request_fulfilled": N_("marked an access request answered"),
    "documents_read": N_("listed the documents"),
    "document_downloaded": N_("downloaded a document"),
    "report_made": N_("made the end-of-monitoring report available"),
    "patient_export": N_("exported the patient's data"),
    "share_report": N_("downloaded the end-of-monitoring report"),
    "patient_app_link_created": N_("made an enrollment link for the patient app"),
    "patient_app_link_revoked": N_("withdrew an enrollment link of the patient app"),
    "patient_app_phone_revoked": N_("disconnected the patient's phone"),
    "patient_app_read": N_("viewed the patient app's phones and links"),
    "patient_message_sent": N_("sent the patient a message"),
    "patient_messages_read": N_("viewed the messages sent to the patient"),
    "patient_app_home": N_("opened the app's home screen"),
    "patient_message_read": N_("read a message from the team"),
    "wound_photos_read": N_("listed the wound photos"),
    "wound_photo_viewed": N_("viewed a wound photo"),
    "wound_photo_shared": N_("shared a wound photo with the home physician"),
    "wound_photo_unshared": N_("stopped sharing a wound photo"),
}
# the consents a patient gives, and the notice each one is given on
CONSENT_KINDS = {
    "monitoring": N_("Remote monitoring"),
    "sharing": N_("Sharing with a home physician"),
    "transfer": N_("Transfer outside the EU/EEA"),
}
CONSENT_STATES = {
    "none": N_("not recorded"),
    "given": N_("given"),
    "refused": N_("refused"),
    "withdrawn": N_("withdrawn"),
}
ACCESS_REQUEST_KINDS = {
    "access": N_("access to the record"),
    "portability": N_("portability (copy of the data)"),
}
# the patient's phones in the patient app (api/care_team/patient_app.py)
PHONE_STATES = {
    "active": N_("connected"),
    "revoked": N_("disconnected by the team"),
    "replaced": N_("replaced by a newer phone"),
    "expired": N_("expired"),
    "ended": N_("follow-up ended"),
}
# parameters of rules without a metric of their own, read in this metric's unit
PARAM_METRIC = {"hr_above": "heart_rate_bpm"}
# NEWS2 signs the engine names in ``scored_params`` that are not metrics
NEWS2_SIGNS = {"on_oxygen": N_("on oxygen"), "consciousness": N_("consciousness")}
# evidence the page does not list (the engine's bookkeeping; another item says it)
HIDDEN_EVIDENCE = frozenset({"last_reading_ms", "reminder_due_ms"})
# evidence read as a value of this metric whatever the rule's own metric
EVIDENCE_METRIC = {
    "temp_c": "temp_c",
    "pulse": "heart_rate_bpm",
    "usual_pulse": "heart_rate_bpm",
    "weight_rise": "weight_kg",
    "weight_fall": "weight_kg",
    "sbp": "bp_systolic_mmhg",
    "usual_sbp": "bp_systolic_mmhg",
    "spo2": "spo2_pct",
    "usual_spo2": "spo2_pct",
}
NEWS2_BANDS = (N_("low"), N_("low-medium"), N_("medium"), N_("high"))
# words that come from the database (roles, priorities, states, transitions)
WORDS = (
    N_("coordinator"),
    N_("physician"),
    N_("admin"),
    N_("high"),
    N_("medium"),
    N_("low"),
    N_("active"),
    N_("acknowledged"),
    N_("resolved"),
    N_("expired"),
    N_("revoked"),
    N_("locked"),
    N_("opened"),
    N_("opened_late"),
    N_("condition_cleared"),
    N_("condition_returned"),
    N_("auto_resolved"),
    N_("escalated_to_tier_1"),
    N_("escalated_to_tier_2"),
    N_("priority_raised_to_medium"),
    N_("priority_raised_to_high"),
    N_("follow_up_ended"),
    N_("condition cleared, awaiting review"),
)
# alert transitions as sentences (the database keeps the names)
TRANSITIONS = {
    "opened": N_("opened"),
    "opened_late": N_("opened late (episode already over)"),
    "acknowledged": N_("acknowledged"),
    "resolved": N_("resolved"),
    "condition_cleared": N_("condition cleared"),
    "condition_returned": N_("condition returned"),
    "auto_resolved": N_("resolved automatically (condition cleared)"),
    "escalated_to_tier_1": N_("escalated to the physician"),
    "escalated_to_tier_2": N_("escalated to the administrator"),
    "priority_raised_to_medium": N_("priority raised to medium"),
    "priority_raised_to_high": N_("priority raised to high"),
    "follow_up_ended": N_("resolved: follow-up ended"),
}


@dataclass(frozen=True, slots=True)
class Labels:
    language: str
    translations: NullTranslations

    def _(self, message: str) -> str:
        return self.translations.gettext(message)

    def short(self, metric: str) -> str:
        return self._(SHORT.get(metric, metric))

    def long(self, metric: str) -> str:
        return self._(LONG.get(metric, metric))

    def unit(self, metric: str) -> str:
        ucum = BY_NAME[metric].ucum
        if ucum in UNIT_WORDS:
            return self._(UNIT_WORDS[ucum])
        return SHOWN_UNIT.get(ucum, ucum)

    def rule(self, rule_id: str, published: str | None = None) -> str:
        """The rule's title in the reader's language; never its id."""
        if published:
            # the engine's own title carries this protocol's threshold: never replace it
            # by another protocol's (an untranslated title reads in English, not wrong)
            return self._(published)
        if rule_id in RULE_TITLES:
            return self._(RULE_TITLES[rule_id])
        return published or self._(N_("Alert rule")) + f" ({rule_id.replace('_', ' ')})"

    def protocol(self, protocol: str) -> str:
        if protocol in PROTOCOL_TITLES:
            return self._(PROTOCOL_TITLES[protocol])
        return protocol.replace("_", " ").capitalize()

    def param(self, param: str) -> str:
        return self._(PARAMS.get(param, N_("Value")))

    def threshold(self, metric: str | None, param: str, value: float | None) -> str:
        """A rule parameter with its unit: "88 %", "0,08 °C/h"."""
        if value is None:
            return "—"
        metric = PARAM_METRIC.get(param, metric)
        if metric not in BY_NAME:
            return self.evidence(float(value))
        if param == "slope_per_h_above":
            text = format_decimal(value, format="#,##0.###", locale=self.language)
            return f"{text}\u00a0{self.unit(metric)}/h"
        return self.value(metric, value)

    def device_kind(self, kind: str) -> str:
        return self._(DEVICE_KINDS.get(kind, N_("Other device")))

    def language_name(self, code: str) -> str:
        """A language in the reader's language ("anglais"), never its code."""
        try:
            name = Locale.parse(code.replace("-", "_")).get_display_name(self.language)
        except (UnknownLocaleError, ValueError):
            return code
        return name or code

    def country(self, code: str | None) -> str:
        if not code:
            return "—"
        return str(Locale.parse(self.language).territories.get(code.upper(), code))

    def consent_kind(self, kind: str) -> str:
        return self._(CONSENT_KINDS.get(kind, N_("Consent")))

    def consent_state(self, state: str) -> str:
        return self._(CONSENT_STATES.get(state, N_("not recorded")))

    def access_request_kind(self, kind: str) -> str:
        return self._(ACCESS_REQUEST_KINDS.get(kind, N_("access to the record")))

    def action(self, name: str) -> str:
        return self._(ACTIONS.get(name, N_("other access")))

    def phone_state(self, state: str) -> str:
        return self._(PHONE_STATES.get(state, state))

    def transition(self, name: str) -> str:
        return self._(TRANSITIONS.get(name, name.replace("_", " ")))

    def alert_state(
        self, state: str, cleared_at: object | None, evidence: dict[str, Any] | None = None
    ) -> str:
        """An open alert whose condition has cleared waits for a person: it is not
        'active' any more, and the page must not say so. A single abnormal spot reading
        opens a low-priority alert that asks for a re-measurement: the page says so."""
        if state != "resolved" and cleared_at is not None:
            return self._(N_("condition cleared, awaiting review"))
        if state != "resolved" and (evidence or {}).get("confirmation_requested") is True:
            return self._(N_("confirmation requested (re-measure)"))
        return self._(state)

    def duration(self, seconds: float) -> str:
        """Seconds as a person says them: "10 h 5 min", "3 days 2 h"."""
        total = round(seconds)
        days, rest = divmod(total, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, secs = divmod(rest, 60)
        parts: list[tuple[int, str]] = [(days, "day"), (hours, "hour"), (minutes, "minute")]
        if total < 60:
            parts = [(secs, "second")]
        shown = [(n, unit) for n, unit in parts if n][:2] or [(0, "minute")]
        return " ".join(
            format_unit(n, f"duration-{unit}", length="short", locale=self.language)
            for n, unit in shown
        )

    def evidence_items(self, evidence: dict[str, Any], metric: str | None) -> list[tuple[str, str]]:
        """(label, value) pairs a clinician reads; the engine's keys never shown."""
        out: list[tuple[str, str]] = []
        ordered = sorted(evidence.items(), key=lambda kv: EVIDENCE_RANK.get(kv[0], len(EVIDENCE)))
        for key, value in ordered:
            if key in HIDDEN_EVIDENCE or (key == "confirmation_requested" and value is False):
                continue  # a confirmed alert says nothing of a request
            label = self._(EVIDENCE.get(key, N_("detail")))
            shown_as = EVIDENCE_METRIC.get(key) or metric
            if key == "scored_params" and isinstance(value, str):
                text = ", ".join(self._scored(name) for name in value.split(",") if name) or "—"
            elif key in ("also_missing", "still_missing") and isinstance(value, str):
                text = ", ".join(self.long(name) for name in value.split(",") if name) or "—"
            elif key.endswith("_s") and isinstance(value, int | float):
                text = self.duration(float(value))
            elif key == "band" and isinstance(value, int) and 0 <= value < len(NEWS2_BANDS):
                text = self._(NEWS2_BANDS[value])
            elif isinstance(value, bool):
                text = self._(N_("yes")) if value else self._(N_("no"))
            elif key in ("value", "threshold") and metric in BY_NAME:
                text = self.value(metric, float(value)) if value is not None else "—"
            elif key == "battery_pct" and isinstance(value, int | float):
                text = self.value("battery_pct", float(value))
            elif key == "slope_per_h" and metric in BY_NAME and isinstance(value, int | float):
                text = f"{self.value(metric, float(value))}/h"
            elif key in ("rise", "fall", "usual") and metric in BY_NAME:
                text = self.value(metric, float(value)) if value is not None else "—"
            elif key in EVIDENCE_METRIC and shown_as in BY_NAME:
                text = self.value(shown_as, float(value)) if value is not None else "—"
            else:
                text = self.evidence(value)
            out.append((label, text))
        return out

    def reading(self, answer: Sequence[AskedReading]) -> str:
        """A re-measurement as the team reads it: "112/70 mmHg", "95 %"."""
        values = {r.metric: r.value for r in answer}
        if "bp_systolic_mmhg" in values and "bp_diastolic_mmhg" in values:
            systolic = format_decimal(values["bp_systolic_mmhg"], "#,##0", locale=self.language)
            diastolic = self.value("bp_diastolic_mmhg", values["bp_diastolic_mmhg"])
            return f"{systolic}/{diastolic}"
        return ", ".join(self.value(r.metric, r.value) for r in answer if r.metric in BY_NAME)

    def _scored(self, name: str) -> str:
        if name in NEWS2_SIGNS:
            return self._(NEWS2_SIGNS[name])
        return self.short(name) if name in SHORT else self._(N_("other sign"))

    def value(self, metric: str, value: float | None) -> str:
        if value is None:
            return "?"
        m = BY_NAME[metric]
        pattern = "#,##0" + ("." + "0" * m.decimals if m.decimals else "")
        text = format_decimal(value, format=pattern, locale=self.language)
        unit = self.unit(metric)
        return f"{text}\u00a0{unit}" if unit else text

    def age(self, seconds: float | None) -> str:
        if seconds is None:
            return "—"
        return format_timedelta(
            timedelta(seconds=-max(seconds, 0.0)),
            add_direction=True,
            threshold=1.1,
            locale=self.language,
        )

    def date(self, value: date) -> str:
        return format_date(value, "medium", locale=self.language)

    def evidence(self, value: Any) -> str:
        if isinstance(value, float):
            return format_decimal(value, format="#,##0.##", locale=self.language)
        return str(value)
