"""Words of the shared pages that come from data rather than templates: what each alert
rule watches and the metric names, in the physician's language (``share`` catalogs).
Marked with ``S_`` for extraction; the clinician pages use their own catalog."""

from __future__ import annotations


def S_(message: str) -> str:  # "mark for the share catalog", translated at render time
    return message


RULES = {
    "spo2_critical": S_("Oxygen saturation very low"),
    "spo2_low": S_("Oxygen saturation low"),
    "hr_critical": S_("Heart rate very high"),
    "hr_high": S_("Heart rate high"),
    "hr_low": S_("Heart rate low"),
    "hr_above_baseline": S_("Heart rate above the patient's usual values"),
    "sbp_low": S_("Low blood pressure"),
    "rr_high": S_("Breathing rate high"),
    "fever": S_("Fever"),
    "temp_rising": S_("Temperature rising"),
    "temp_above_usual": S_("Temperature well above the patient's usual"),
    "low_grade_fever": S_("Low-grade fever (confirmed)"),
    "weight_gain": S_("Weight gain"),
    "fluid_overload": S_(
        "Weight gain with lower saturation or a faster pulse (possible heart failure)"
    ),
    "news2": S_("Early warning score (NEWS2) raised"),
    "shock_index": S_("Shock index raised (pulse high for the blood pressure)"),
    "no_spo2": S_("Oxygen saturation not measured for a while"),
    "no_weight": S_("Weight not measured for a while"),
    "no_bp": S_("Blood pressure not measured this morning"),
    "no_temp": S_("Temperature not measured this morning"),
    "gateway_offline": S_("Home hub offline"),
    "battery_low": S_("Device battery low"),
    "implausible_rate": S_("Many implausible readings (device problem)"),
    "sbp_below_usual": S_("Blood pressure well below the patient's usual"),
    "weight_loss": S_("Weight loss (possible dehydration)"),
    "dehydration": S_(
        "Weight loss with a faster pulse or lower blood pressure (possible dehydration)"
    ),
    "sepsis_screen": S_("Possible infection (fever with raised pulse)"),
    "af_suspected": S_("Irregular heart rhythm (possible atrial fibrillation)"),
    "spo2_spot_low": S_("Low oxygen saturation at a spot check"),
    # what the patient reports in the daily questionnaire
    "pain_high": S_("Severe pain reported by the patient"),
    "pain_rising": S_("Pain reported rising since the day before"),
    "wound_fever": S_("Wound signs with fever (possible wound infection)"),
    "calf_pulse": S_("Calf pain or swelling with a rising pulse (possible thrombosis)"),
    "calf_reported": S_("Calf pain or swelling reported by the patient"),
    "breathless_new": S_("New breathlessness reported by the patient"),
}
METRICS = {
    "heart_rate_bpm": S_("Heart rate"),
    "spo2_pct": S_("Oxygen saturation (SpO2)"),
    "temp_c": S_("Body temperature"),
    "bp_systolic_mmhg": S_("Systolic blood pressure"),
    "bp_diastolic_mmhg": S_("Diastolic blood pressure"),
    "resp_rate_per_min": S_("Respiratory rate"),
    "weight_kg": S_("Body weight"),
    "pain_score": S_("Pain score (0-10)"),
    "pain_movement_score": S_("Pain on movement (0-10)"),
    "glucose_mmol_l": S_("Blood glucose"),
    "steps_count": S_("Steps"),
}
UNIT_WORDS = {"steps": S_("steps")}
# device kinds (both spellings in use), for the documents made for physicians and patients
DEVICE_KINDS = {
    "oximeter": S_("Pulse oximeter"),
    "pulse_oximeter": S_("Pulse oximeter"),
    "bp-cuff": S_("Blood-pressure cuff"),
    "bp_cuff": S_("Blood-pressure cuff"),
    "thermometer": S_("Thermometer"),
    "scale": S_("Scale"),
    "hr-patch": S_("Heart-rate patch"),
    "hr_patch": S_("Heart-rate patch"),
    "glucose-meter": S_("Glucose meter"),
    "glucose_meter": S_("Glucose meter"),
    "pain-diary": S_("Pain diary"),
    "pain_diary": S_("Pain diary"),
}
OTHER_DEVICE = S_("Other device")
OTHER_RULE = S_("Other alert")
PRIORITIES = {"high": S_("high"), "medium": S_("medium"), "low": S_("low")}

# answers of the shared pages' data requests (the page shows them as they are)
LINK_UNUSABLE = S_("This link cannot be used now. Reload the page.")
UNKNOWN_METRIC = S_("This measurement is not shown on shared pages.")

# the patient's consents, in the data export
CONSENT_KINDS = {
    "monitoring": S_("Remote monitoring"),
    "sharing": S_("Sharing with a home physician"),
    "transfer": S_("Transfer outside the EU/EEA"),
}
CONSENT_DECISIONS = {"given": S_("given"), "refused": S_("refused"), "withdrawn": S_("withdrawn")}
