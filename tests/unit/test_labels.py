"""Words on the clinician pages: a rule's title keeps its own protocol's threshold in
every language, evidence reads as durations and units, an open alert whose condition
cleared never says 'active'."""

from __future__ import annotations

from datetime import UTC, datetime

from api.common.i18n import load_catalogs
from api.common.labels import Labels

CATALOGS = load_catalogs()


def test_a_published_title_is_never_replaced_by_another_protocols() -> None:
    for language in ("en", "fr"):
        labels = Labels(language, CATALOGS[language])
        title = labels.rule("hr_high", "Heart rate above 110/min for 15 min")
        assert "110" in title
        assert "120" not in title
    fr = Labels("fr", CATALOGS["fr"])
    assert fr.rule("no_spo2") == "Aucune mesure de SpO2 pendant 8 h d'éveil"
    # an alert opened under the earlier title still reads it, translated
    assert fr.rule("no_spo2", "No SpO2 reading for 10 h") == "Aucune mesure de SpO2 depuis 10 h"
    assert "_" not in Labels("en", CATALOGS["en"]).rule("some_new_rule")


def test_evidence_and_cleared_state_read_like_a_clinician_speaks() -> None:
    fr = Labels("fr", CATALOGS["fr"])
    items = dict(fr.evidence_items({"silent_s": 36300, "value": 86.0}, "spo2_pct"))
    assert items["aucune mesure depuis"].replace("\u202f", " ").replace("\u00a0", " ") == (
        "10 h 5 min"
    )
    assert items["pire valeur"] == "86\u00a0%"
    assert fr.alert_state("active", datetime.now(UTC)) == "condition disparue, à examiner"
    assert fr.alert_state("active", None) == "active"
    assert fr.unit("steps_count") == "pas"
    assert Labels("en", CATALOGS["en"]).unit("steps_count") == "steps"


def test_newer_rules_evidence_reads_in_words() -> None:
    fr = Labels("fr", CATALOGS["fr"])
    items = dict(
        fr.evidence_items(
            {
                "scored_params": "resp_rate_per_min,on_oxygen,consciousness",
                "confirmation_requested": False,
                "last_reading_ms": 1_764_000_000_000,
            },
            None,
        )
    )
    assert items == {"paramètres comptés": "FR, sous oxygène, conscience"}
    sepsis = dict(fr.evidence_items({"temp_c": 38.6, "pulse": 112.0}, None))
    assert sepsis == {"température": "38,6\u00a0°C", "pouls": "112\u00a0/min"}
    assert fr.alert_state("active", None, {"confirmation_requested": True}) == (
        "confirmation demandée (refaire la mesure)"
    )
    assert fr.alert_state("acknowledged", None, {"confirmation_requested": False}) == "acquittée"
    assert fr.threshold(None, "hr_above", 90.0) == "90\u00a0/min"
    assert fr.rule("sbp_below_usual").startswith("Pression systolique 30 mmHg")


def test_a_missing_data_alert_names_every_missing_measurement() -> None:
    """One missing-data alert per patient: the metrics that joined it read in words."""
    for language, expected in (
        ("fr", {"manque aussi": "Température corporelle, Saturation en oxygène (SpO2)"}),
        ("en", {"also missing": "Body temperature, Oxygen saturation (SpO2)"}),
    ):
        labels = Labels(language, CATALOGS[language])
        items = dict(labels.evidence_items({"also_missing": "temp_c,spo2_pct"}, "bp_systolic_mmhg"))
        assert items == expected
    still = Labels("fr", CATALOGS["fr"]).evidence_items({"still_missing": "temp_c"}, None)
    assert still == [("manque encore", "Température corporelle")]


def test_fluid_overload_evidence_reads_in_each_signs_unit() -> None:
    fr = Labels("fr", CATALOGS["fr"])
    evidence = {"weight_rise": 1.6, "spo2": 93.0, "usual_spo2": 96.0, "pulse": 74.0}
    items = dict(fr.evidence_items(evidence, None))
    assert items == {
        "poids pris": "1,6\u00a0kg",
        "saturation": "93\u00a0%",
        "saturation habituelle du patient": "96\u00a0%",
        "pouls": "74\u00a0/min",
    }
    assert fr.rule("fluid_overload").startswith("Poids en hausse de 1 kg en une semaine")


def test_dehydration_evidence_reads_in_each_signs_unit() -> None:
    fr = Labels("fr", CATALOGS["fr"])
    evidence = {"weight_fall": 1.9, "pulse": 84.0, "usual_pulse": 72.0, "sbp": 118.0}
    evidence["usual_sbp"] = 135.0
    # the database returns a JSON object's keys shortest first; the page reads the fall
    # first, then each sign next to the patient's usual of it
    stored = dict(sorted(evidence.items(), key=lambda kv: (len(kv[0]), kv[0])))
    assert fr.evidence_items(stored, None) == [
        ("poids perdu", "1,9\u00a0kg"),
        ("pouls", "84\u00a0/min"),
        ("pouls habituel du patient", "72\u00a0/min"),
        ("pression systolique", "118\u00a0mmHg"),
        ("pression systolique habituelle du patient", "135\u00a0mmHg"),
    ]
    assert fr.rule("dehydration").startswith("Poids en baisse de 1 kg (ou 1,5 %) en 3 jours")
    assert fr.rule("weight_loss") == "Perte de poids de plus de 3 kg (ou 3 %) en 3 jours"
