"""Low-battery requests (issue 17): the message kind that asks the patient to charge a
device (or change its batteries), by the device's kind. Oximeters and chest patches are
recharged; cuffs, thermometers, scales and glucose meters take replaceable cells. The
alerts engine writes the kind (it asks), the patient app words it in the patient's
language naming the device (it shows), so both read it here."""

from __future__ import annotations

from typing import Final

# device kind (both spellings of vitals.device_kinds) -> patient message kind
# (store/migrations/0024's CHECK lists the kinds); any other kind: CHARGE_OTHER
CHARGE_KIND: Final[dict[str, str]] = {
    "oximeter": "charge_oximeter",
    "pulse_oximeter": "charge_oximeter",
    "hr-patch": "charge_patch",
    "hr_patch": "charge_patch",
    "bp-cuff": "batteries_bp_cuff",
    "bp_cuff": "batteries_bp_cuff",
    "thermometer": "batteries_thermometer",
    "scale": "batteries_scale",
    "glucose-meter": "batteries_glucose_meter",
    "glucose_meter": "batteries_glucose_meter",
}
CHARGE_OTHER: Final = "charge_device"
CHARGE_KINDS: Final[tuple[str, ...]] = (*dict.fromkeys(CHARGE_KIND.values()), CHARGE_OTHER)
