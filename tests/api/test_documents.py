"""Documents over a real database: the end-of-monitoring report made when a follow-up
ends (French, the home physician's language, English), rendered to images with pdftoppm
and read back with pdftotext, its DocumentReference validated with fhir.resources, found
and downloaded (audited) on the shared page, made again by the team; the patient's data
export, a complete FHIR R4 Bundle validated with fhir.resources and a PDF in each of the
eight languages; the sibling features' tables read when they exist.

The Arabic and Chinese report pages are kept as PNG in tests/artifacts/ for a person to
look at (Arabic joined and right to left, Chinese glyphs, no empty boxes)."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.documentreference import DocumentReference
from PIL import Image

from tests.api.conftest import World, add_vitals, audit_rows
from tests.api.test_questionnaires_api import _answer

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
REPORT_TITLE = {
    "fr": "Rapport de fin de télésurveillance",
    "en": "End-of-monitoring report",
    "es": "Informe de fin de la monitorización",
    "it": "Relazione di fine monitoraggio",
    "de": "Abschlussbericht der Fernüberwachung",
    "pt": "Relatório de fim da monitorização",
    "ar": "تقرير نهاية المراقبة",
    "zh": "监测结束报告",
}
EXPORT_TITLE = {
    "fr": "Copie des données du patient",
    "en": "Copy of the patient's data",
    "es": "Copia de los datos del paciente",
    "it": "Copia dei dati del paziente",
    "de": "Kopie der Daten des Patienten",
    "pt": "Cópia dos dados do paciente",
    "ar": "نسخة من بيانات المريض",
    "zh": "患者数据副本",
}
# "Readings received" (adherence); pdftotext gives Arabic's lam-alef ligature back as
# other characters, so the Arabic words checked have none
RECEIVED = {
    "fr": "Mesures reçues",
    "en": "Readings received",
    "ar": "القياسات المستلمة",
    "zh": "已收到测量次数",
}

pytestmark = pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
    reason="poppler-utils (pdftoppm, pdftotext) is needed to read the PDFs back",
)


def pdf_text(pdf: bytes, tmp: Path) -> str:
    path = tmp / "doc.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True
    )
    return " ".join(out.stdout.decode().split())  # a table's header may wrap


def pdf_pages(pdf: bytes, tmp: Path, name: str, keep: bool = False) -> list[Path]:
    """Each page as a PNG (kept in tests/artifacts/ when asked); every page has ink."""
    path = tmp / f"{name}.pdf"
    path.write_bytes(pdf)
    target = ARTIFACTS if keep else tmp
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob(f"{name}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", "80", "-png", str(path), str(target / name)], check=True)
    pages = sorted(target.glob(f"{name}-*.png"))
    assert pages
    for page in pages:
        with Image.open(page) as image:
            extrema = image.convert("L").getextrema()
        assert extrema[0] < 128 < extrema[1], f"{page.name} is blank"  # type: ignore[operator]
    return pages


def pdf_page_size_mm(pdf: bytes, tmp: Path) -> tuple[float, float]:
    path = tmp / "size.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, check=True, text=True)
    line = next(x for x in info.stdout.splitlines() if x.startswith("Page size:"))
    w, h = (float(v) for v in line.split()[2:5:2])
    return w * 25.4 / 72, h * 25.4 / 72


def make_link(client: TestClient, patient_id: int, language: str) -> str:
    res = client.post(
        f"/api/v1/patients/{patient_id}/share-links",
        json={"language": language, "second_code": False, "recipient": "Dr Home"},
    )
    assert res.status_code == 201, res.text
    return str(res.json()["url"])


def _kit_and_history(conn: psycopg.Connection, world: World) -> None:
    """Patient A: a cuff and a thermometer beside the oximeter, a note, a handled alert
    and a technical incident, over three days."""
    now = datetime.now(UTC).replace(microsecond=0)
    conn.execute(
        "INSERT INTO gateways (gateway_id, team_id) VALUES ('gw-doc', %s)", (world.team_a,)
    )
    for device, kind in (("cuff-doc", "bp_cuff"), ("thermo-doc", "thermometer")):
        conn.execute(
            "INSERT INTO devices (device_id, kind, gateway_id) VALUES (%s, %s, 'gw-doc')",
            (device, kind),
        )
        conn.execute(
            "INSERT INTO enrollments (device_id, patient_id, valid) VALUES (%s, %s,"
            " tstzrange(%s, NULL))",
            (device, world.patient_a, now - timedelta(days=3)),
        )
    # one reading on each of the follow-up's four local days, whatever the hour: the first
    # as the devices were enrolled, the last now, none more than 14 h from the next
    times = [now - timedelta(hours=h) for h in (72, 58, 44, 30, 16, 0)]
    add_vitals(conn, world.patient_a, "cuff-doc", "bp_systolic_mmhg", [(t, 120.0) for t in times])
    add_vitals(conn, world.patient_a, "cuff-doc", "bp_diastolic_mmhg", [(t, 75.0) for t in times])
    add_vitals(
        conn,
        world.patient_a,
        "thermo-doc",
        "temp_c",
        [(t, 37.0 + i / 10) for i, t in enumerate(times)],
    )
    conn.execute(
        "UPDATE patients SET procedure = 'Colectomie', surgery_date = %s, discharged_at = %s"
        " WHERE patient_id = %s",
        ((now - timedelta(days=4)).date(), now - timedelta(days=3), world.patient_a),
    )
    clinician = conn.execute("SELECT min(clinician_id) FROM clinicians").fetchone()
    assert clinician is not None
    conn.execute(
        "INSERT INTO clinician_notes (patient_id, clinician_id, body) VALUES (%s, %s,"
        " 'Appel au patient : va bien, marche 30 min par jour.')",
        (world.patient_a, clinician[0]),
    )
    conn.execute(
        "INSERT INTO alerts (patient_id, rule_id, kind, priority, state, opened_at,"
        " resolved_at, resolved_by, resolution_note, evidence) VALUES (%s, 'gateway_offline',"
        " 'technical', 'low', 'resolved', %s, %s, 'system', NULL, '{}')",
        (world.patient_a, now - timedelta(days=1), now - timedelta(hours=20)),
    )


@pytest.fixture
def ended_with_arabic_link(
    login: Callable[[str], TestClient], world: World
) -> tuple[TestClient, str]:
    """Patient A's physician reads Arabic; the admin ends the follow-up."""
    with psycopg.connect(world.db, autocommit=True) as conn:
        _kit_and_history(conn, world)
    physician = login("physician")
    url = make_link(physician, world.patient_a, "ar")
    admin = login("admin")
    res = admin.post(
        f"/api/v1/patients/{world.patient_a}/end-follow-up", json={"note": "Suivi terminé."}
    )
    assert res.status_code == 200, res.text
    return admin, url


def test_ending_a_follow_up_makes_the_report_in_french_arabic_and_english(
    ended_with_arabic_link: tuple[TestClient, str], world: World, tmp_path: Path
) -> None:
    admin, _url = ended_with_arabic_link
    listed = admin.get(f"/api/v1/patients/{world.patient_a}/documents").json()
    reports = [d for d in listed if d["kind"] == "end_of_monitoring"]
    assert [d["language"] for d in reports] == ["fr", "ar", "en"]
    assert all(d["current"] for d in reports)
    for d in reports:
        res = admin.get(d["pdf_url"])
        assert res.status_code == 200
        assert res.headers["content-type"] == "application/pdf"
        pdf = res.content
        text = pdf_text(pdf, tmp_path)
        lang = d["language"]
        assert REPORT_TITLE[lang] in text
        assert RECEIVED[lang] in text
        assert "PA-001" in text
        assert "Chirurgie digestive A" in text  # the team in the running header
        assert "Appel au patient" in text  # the team's note, in its own words
        w, h = pdf_page_size_mm(pdf, tmp_path)
        assert (round(w), round(h)) == (210, 297)  # A4
        pages = pdf_pages(pdf, tmp_path, f"report-{lang}", keep=lang == "ar")
        assert len(pages) >= 2
        # page numbers ("1 / 3"; pdftotext writes Arabic's in visual order)
        assert f"1 / {len(pages)}" in text or f"{len(pages)} / 1" in text
        # the FHIR form: a DocumentReference carrying this very PDF
        ref = admin.get(d["fhir_url"]).json()
        DocumentReference.model_validate(ref)
        attachment = ref["content"][0]["attachment"]
        assert base64.b64decode(attachment["data"]) == pdf
        assert attachment["language"] == lang
        assert attachment["hash"] == base64.b64encode(hashlib.sha1(pdf).digest()).decode()  # noqa: S324
    fr = pdf_text(admin.get(reports[0]["pdf_url"]).content, tmp_path)
    # every alert with what the team did: the open one closed by the end of the follow-up,
    # the technical incident in its own section; adherence per metric
    assert "Close à la fin du suivi" in fr
    assert "Incidents techniques" in fr
    assert "Boîtier du domicile hors ligne" in fr
    assert "Pression artérielle systolique 6 8 (75 %) 4/4" in fr  # 2 a day expected
    made = audit_rows(world.db, "report_made")
    assert made[0][2] == {"document_ids": [1, 2, 3], "reason": "follow_up_ended"}
    assert len(audit_rows(world.db, "document_downloaded")) == 7


def test_the_home_physician_finds_and_downloads_the_report_on_the_shared_page(
    ended_with_arabic_link: tuple[TestClient, str],
    anonymous: TestClient,
    world: World,
    tmp_path: Path,
) -> None:
    _admin, url = ended_with_arabic_link
    page = anonymous.get(url)
    assert page.status_code == 200
    assert "تقرير نهاية المراقبة" in page.text
    assert f"{url}/report/ar" in page.text
    assert f"{url}/report/fr" in page.text
    res = anonymous.get(f"{url}/report/ar")
    assert res.status_code == 200
    assert res.headers["content-type"] == "application/pdf"
    assert res.headers["cache-control"].startswith("no-store")
    assert REPORT_TITLE["ar"] in pdf_text(res.content, tmp_path)
    ref = anonymous.get(f"{url}/report/en/fhir")
    DocumentReference.model_validate(ref.json())
    missing = anonymous.get(f"{url}/report/zh")
    assert missing.status_code == 404
    assert "لا يوجد تقرير بهذه اللغة بعد" in missing.text
    uses = audit_rows(world.db, "share_report")
    assert [u[1] for u in uses] == [world.patient_a, world.patient_a]
    assert str(uses[0][0]).startswith("share_link:")


def test_report_in_chinese_renders_its_glyphs(
    login: Callable[[str], TestClient], world: World, tmp_path: Path
) -> None:
    physician = login("physician")
    make_link(physician, world.patient_a, "zh")
    admin = login("admin")
    assert (
        admin.post(f"/api/v1/patients/{world.patient_a}/end-follow-up", json={}).status_code == 200
    )
    reports = [
        d
        for d in admin.get(f"/api/v1/patients/{world.patient_a}/documents").json()
        if d["language"] == "zh"
    ]
    pdf = admin.get(reports[0]["pdf_url"]).content
    text = pdf_text(pdf, tmp_path)
    assert REPORT_TITLE["zh"] in text
    assert RECEIVED["zh"] in text
    assert "血氧饱和度" in text  # "Oxygen saturation (SpO2)" as a chart's title
    pdf_pages(pdf, tmp_path, "report-zh", keep=True)


def test_the_team_makes_the_report_available_again(
    ended_with_arabic_link: tuple[TestClient, str],
    login: Callable[[str], TestClient],
    world: World,
) -> None:
    _admin, _url = ended_with_arabic_link
    coordinator = login("coordinator")
    before = {
        d["document_id"]
        for d in coordinator.get(f"/api/v1/patients/{world.patient_a}/documents").json()
    }
    res = coordinator.post(f"/api/v1/patients/{world.patient_a}/end-of-monitoring-report")
    assert res.status_code == 201, res.text
    again = res.json()
    assert [d["language"] for d in again] == ["fr", "ar", "en"]
    assert not {d["document_id"] for d in again} & before
    listed = coordinator.get(f"/api/v1/patients/{world.patient_a}/documents").json()
    assert sum(d["current"] for d in listed) == 3
    assert {d["document_id"] for d in listed if not d["current"]} == before
    made = audit_rows(world.db, "report_made")[-1][2]
    assert made == {"document_ids": [d["document_id"] for d in again], "reason": "sent_again"}
    # a follow-up that goes on has no report yet; another team's patient is not ours
    early = coordinator.post(f"/api/v1/patients/{world.patient_a2}/end-of-monitoring-report")
    assert early.status_code == 409
    assert early.json()["detail"] == (
        "The report is made when the follow-up ends; it has not ended."
    )
    other = login("other").post(f"/api/v1/patients/{world.patient_a}/end-of-monitoring-report")
    assert other.status_code == 403
    assert other.json()["detail"] == "This patient is not followed by your care teams."
    assert (
        login("other").get(f"/api/v1/patients/{world.patient_a}/documents/1/pdf").status_code == 403
    )
    assert (
        coordinator.get(f"/api/v1/patients/{world.patient_a}/documents/999999/pdf").status_code
        == 404
    )


def test_the_export_is_a_complete_valid_fhir_bundle(
    login: Callable[[str], TestClient], world: World, tmp_path: Path
) -> None:
    with psycopg.connect(world.db, autocommit=True) as conn:
        _kit_and_history(conn, world)
        counts: dict[str, int] = dict(
            conn.execute(
                "SELECT m.name, count(*) FROM vitals v JOIN metrics m USING (metric_id)"
                " WHERE v.patient_id = %s GROUP BY 1",
                (world.patient_a,),
            ).fetchall()
        )
    coordinator = login("coordinator")
    res = coordinator.post(f"/api/v1/patients/{world.patient_a}/export")
    assert res.status_code == 201, res.text
    out = res.json()
    assert out["access_request_fulfilled"] is False
    body = coordinator.get(out["document"]["fhir_url"]).json()
    bundle = Bundle.model_validate(body)
    assert bundle.type == "collection"
    assert len(body["entry"]) == out["resources"]
    resources = [e["resource"] for e in body["entry"]]
    kinds = {r["resourceType"] for r in resources}
    assert {"Patient", "Device", "Observation", "DetectedIssue", "Flag", "Communication"} <= kinds
    obs = [r for r in resources if r["resourceType"] == "Observation"]
    # every reading its own Observation (no hourly summaries), blood pressure as panels
    assert not any("effectivePeriod" in o for o in obs)
    by_code: dict[str, int] = {}
    for o in obs:
        by_code[o["code"]["coding"][0]["code"]] = by_code.get(o["code"]["coding"][0]["code"], 0) + 1
    assert by_code["59408-5"] == counts["spo2_pct"] == 599
    assert by_code["8867-4"] == counts["heart_rate_bpm"]
    assert by_code["85354-9"] == counts["bp_systolic_mmhg"]
    assert by_code["8310-5"] == counts["temp_c"]
    assert by_code["battery_pct"] == 1
    flag = next(r for r in resources if r["resourceType"] == "Flag")
    assert flag["status"] == "inactive"
    note = next(r for r in resources if r["resourceType"] == "Communication")
    assert note["payload"][0]["contentString"].startswith("Appel au patient")
    rows = audit_rows(world.db, "patient_export")
    assert rows[0][1] == world.patient_a
    assert rows[0][2] == {
        "document_id": out["document"]["document_id"],
        "entries": out["resources"],
        "access_request_fulfilled": False,
    }
    # the PDF in the patient's language (English for patient A)
    pdf = coordinator.get(out["document"]["pdf_url"]).content
    assert out["document"]["language"] == "en"
    assert EXPORT_TITLE["en"] in pdf_text(pdf, tmp_path)
    assert login("other").post(f"/api/v1/patients/{world.patient_a}/export").status_code == 403


@pytest.mark.parametrize("language", list(EXPORT_TITLE))
def test_the_export_pdf_reads_in_the_patients_language(
    language: str, login: Callable[[str], TestClient], world: World, tmp_path: Path
) -> None:
    with psycopg.connect(world.db, autocommit=True) as conn:
        conn.execute(
            "UPDATE patients SET language = %s WHERE patient_id = %s", (language, world.patient_a)
        )
    coordinator = login("coordinator")
    out = coordinator.post(f"/api/v1/patients/{world.patient_a}/export").json()
    assert out["document"]["language"] == language
    pdf = coordinator.get(out["document"]["pdf_url"]).content
    text = pdf_text(pdf, tmp_path)
    assert EXPORT_TITLE[language] in text
    pdf_pages(pdf, tmp_path, f"export-{language}")


def test_the_export_carries_the_consents_and_answers_the_access_request(
    login: Callable[[str], TestClient], world: World
) -> None:
    """Every consent record goes into the export (a withdrawal included), the
    questionnaire's answers too, and the export answers the patient's open request."""
    _answer(world, world.patient_a, "en")
    coordinator = login("coordinator")
    base = f"/api/v1/patients/{world.patient_a}"
    records = coordinator.get(f"{base}/consents").json()["records"]
    sharing = next(r for r in records if r["kind"] == "sharing" and r["in_force"])
    withdrawn = coordinator.post(f"{base}/consents/{sharing['consent_id']}/withdraw", json={})
    assert withdrawn.status_code == 200, withdrawn.text
    request = coordinator.post(
        f"{base}/access-requests",
        json={"kind": "portability", "received_on": datetime.now(UTC).date().isoformat()},
    )
    assert request.status_code == 201, request.text
    out = coordinator.post(f"{base}/export").json()
    assert out["access_request_fulfilled"] is True
    body = coordinator.get(out["document"]["fhir_url"]).json()
    Bundle.model_validate(body)
    consents = [e["resource"] for e in body["entry"] if e["resource"]["resourceType"] == "Consent"]
    assert len(consents) == len(records)
    by_id = {c["id"].rsplit("-", 1)[1]: c for c in consents}
    assert by_id[str(sharing["consent_id"])]["status"] == "inactive"
    assert by_id[str(sharing["consent_id"])]["provision"]["actor"][0]["reference"] == {
        "display": sharing["physician_name"]
    }
    answered = coordinator.get(f"{base}/access-requests").json()
    assert [r["fulfilled_at"] is not None for r in answered] == [True]
    # the questionnaire's answers, under the questions' words in the patient's language
    responses = [
        e["resource"]
        for e in body["entry"]
        if e["resource"]["resourceType"] == "QuestionnaireResponse"
    ]
    assert len(responses) == 1
    items = {i["linkId"]: i for i in responses[0]["item"]}
    assert items["pain_rest"]["answer"] == [{"valueInteger": 8}]
    assert items["pain_rest"]["text"] not in ("", "pain_rest")


def test_the_patient_page_lists_the_documents_in_the_clinicians_words(
    ended_with_arabic_link: tuple[TestClient, str], world: World
) -> None:
    admin, _url = ended_with_arabic_link  # a French account
    page = admin.get(f"/patients/{world.patient_a}", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "Rapport de fin de télésurveillance" in page.text
    assert "Renvoyer le rapport" in page.text
    assert "Exporter les données du patient" in page.text
    assert "Admin A" in page.text  # who made it, by name
    for raw in ("end_of_monitoring", "patient_export", "clinician:"):
        assert raw not in page.text.replace("/end-of-monitoring-report", "")
    quiet = admin.get(f"/patients/{world.patient_a2}", headers={"Accept": "text/html"})
    assert "Aucun document pour l&#39;instant." in quiet.text
    assert "est produit à la fin du suivi" in quiet.text
