"""Every form's bad input is answered by the server with a sentence in the reader's
language (French by default, English) and a 4xx, never a 500; a mistyped page address
or a missing right in the clinician app is a page, the API keeps JSON."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import World

# (role, method, path, body, French words, English words)
CASES = [
    (
        "coordinator",
        "POST",
        "/api/v1/patients/{a}/notes",
        {"body": "   "},
        "Note : ne peut pas être vide",
        "Note: cannot be empty",
    ),
    (
        "coordinator",
        "POST",
        "/api/v1/alerts/{alert}/resolve",
        {"note": "\t \n"},
        "Note : ne peut pas être vide",
        "Note: cannot be empty",
    ),
    (
        "physician",
        "PUT",
        "/api/v1/patients/{a}/overrides",
        {"rule_id": "spo2_low", "param": "threshold", "value": 92, "reason": "   "},
        "Motif : ne peut pas être vide",
        "Reason: cannot be empty",
    ),
    (
        "physician",
        "PUT",
        "/api/v1/patients/{a}/overrides",
        {"rule_id": "spo2_low", "param": "threshold", "value": 400, "reason": "trop haut"},
        "Un seuil doit être compris entre",
        "A threshold must lie between",
    ),
    (
        "admin",
        "POST",
        "/api/v1/patients",
        {"pseudonym": "PA-900", "team_id": 1, "time_zone": "Mars/Olympus"},
        "fuseau horaire inconnu",
        "unknown time zone",
    ),
    (
        "admin",
        "POST",
        "/api/v1/devices",
        {"device_id": "dev-900", "kind": "oximeter", "gateway_id": "gw-missing"},
        "enregistrez d\u2019abord la passerelle",
        "register the gateway first",
    ),
    (
        "admin",
        "POST",
        "/api/v1/gateways",
        {"gateway_id": "x"},
        "Identifiant de la passerelle : pas dans la forme attendue",
        "Gateway id: not in the expected form",
    ),
    (
        "admin",
        "POST",
        "/api/v1/patients/{a}/enrollments",
        {"device_id": "nope-900"},
        "Aucun appareil nope-900",
        "No device nope-900",
    ),
    (
        "physician",
        "POST",
        "/api/v1/patients/{a}/share-links",
        {"language": "ru"},
        "Langue : choisissez",
        "Language: choose",
    ),
    (
        "physician",
        "POST",
        "/api/v1/patients/{a}/share-links",
        {"language": "fr", "days": 400},
        "Validité (jours) : au plus 90",
        "Valid for (days): at most 90",
    ),
    (
        "admin",
        "PUT",
        "/api/v1/teams/1/contact",
        {"contact_email": "not-an-address"},
        "Adresse e-mail : adresse e-mail non valide",
        "E-mail address: not a valid e-mail",
    ),
    (
        "admin",
        "POST",
        "/api/v1/patients/{a}/end-follow-up",
        {"at": "tomorrow"},
        "Quand : date et heure non valides",
        "When: not a valid date and time",
    ),
    (
        "coordinator",
        "POST",
        "/api/v1/patients",
        {"pseudonym": "PA-901", "team_id": 1},
        "Votre rôle ne le permet pas",
        "Your role does not allow this",
    ),
]


@pytest.mark.parametrize(("role", "method", "path", "body", "fr", "en"), CASES)
def test_bad_input_gets_a_translated_sentence(
    login: Callable[[str], TestClient],
    world: World,
    role: str,
    method: str,
    path: str,
    body: dict[str, object],
    fr: str,
    en: str,
) -> None:
    client = login(role)
    url = path.format(a=world.patient_a, alert=world.alert_a)
    for language, expected in (("fr", fr), ("en", en)):
        res = client.request(method, url, json=body, headers={"Accept-Language": language})
        assert 400 <= res.status_code < 500, res.text
        assert expected in res.json()["detail"], (
            language,
            res.json(),
        )


def test_pages_answer_pages_and_the_api_json(
    login: Callable[[str], TestClient], world: World
) -> None:
    client = login("coordinator")  # a French account
    client.headers.pop("Accept-Language")
    for path, status, words in (
        ("/no/such/page", 404, "Page introuvable"),
        ("/patients/987654", 404, "Ce patient n\u2019existe pas."),
        (f"/patients/{world.patient_b}", 403, "Accès refusé"),
        ("/admin", 403, "Votre rôle ne le permet pas."),
        ("/patients/not-a-number", 422, "Impossible"),
    ):
        res = client.get(path)
        assert res.status_code == status, path
        assert res.headers["content-type"].startswith("text/html"), path
        assert words in res.text, path
    api = client.get("/api/v1/nothing/here")
    assert api.status_code == 404
    assert api.json() == {"detail": "Cette page n\u2019existe pas."}
