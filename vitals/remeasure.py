"""Re-measurement requests (issue 17): the measurement a patient is asked to take again
when one spot reading of a metric opened an alert that awaits its confirmation. Each
metric a ``confirmed`` or ``relative`` rule can watch maps to a patient message kind; the
alerts engine writes the kind (it asks), the patient app words it in the patient's
language (it shows), so both read it here."""

from __future__ import annotations

from typing import Final

# metric -> patient message kind (store/migrations/0022's CHECK lists the kinds)
REQUEST_KIND: Final[dict[str, str]] = {
    "spo2_pct": "measure_spo2",
    "heart_rate_bpm": "measure_pulse",
    "bp_systolic_mmhg": "measure_blood_pressure",
    "bp_diastolic_mmhg": "measure_blood_pressure",
    "bp_mean_mmhg": "measure_blood_pressure",
    "temp_c": "measure_temperature",
    "weight_kg": "measure_weight",
}
# all of the patient's measurements now, when one waking reading is off and the others
# are not fresh (alerts/full_set.py; store/migrations/0028)
FULL_SET_KIND: Final = "measure_vitals"
REQUEST_KINDS: Final[tuple[str, ...]] = (*dict.fromkeys(REQUEST_KIND.values()), FULL_SET_KIND)
