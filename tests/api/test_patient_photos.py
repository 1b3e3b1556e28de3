"""Issue 20, wound photos from the patient's phone through the API: a photo is kept
without its EXIF GPS position and the team sees it; an oversized, a non-image and a
polyglot file are refused with a sentence in the patient's language, and nothing is
stored; only an enrolled phone may send. Every patient-facing word of the photo and
reminder screens exists in the eight languages."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import SecretStr

from api.app import create_app
from tests.api.conftest import World, audit_rows
from tests.patient_phone import enroll_phone
from vitals.settings import ApiSettings, Settings

GPS_IFD = 0x8825
API = Path(__file__).resolve().parents[2] / "api"
LANGUAGES = ("fr", "es", "it", "de", "pt", "ar", "zh")  # and English, the message ids


@pytest.fixture
def app_settings(world: World) -> Settings:
    return Settings(
        database_url=SecretStr(world.db),
        api=ApiSettings(photo_max_bytes=300_000, photo_max_side_px=800),
    )


@pytest.fixture
def phone(world: World, app_settings: Settings) -> Iterator[TestClient]:
    """The Spanish-speaking patient A2's enrolled phone."""
    enrolled = enroll_phone(world.db, world.patient_a2)
    with TestClient(create_app(app_settings), cookies=enrolled.cookies) as client:
        yield client


def gps_jpeg(size: tuple[int, int] = (1000, 750)) -> bytes:
    exif = Image.Exif()
    exif[GPS_IFD] = {1: "N", 2: (40.0, 25.0, 1.0), 3: "W", 4: (3.0, 42.0, 9.0)}
    out = io.BytesIO()
    Image.new("RGB", size, (170, 80, 70)).save(out, "JPEG", exif=exif.tobytes(), quality=70)
    return out.getvalue()


def stored(db: str, patient_id: int) -> list[bytes]:
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT image FROM wound_photos WHERE patient_id = %s", (patient_id,)
        ).fetchall()
    return [bytes(r[0]) for r in rows]


def test_a_photo_is_kept_without_its_gps_position_and_the_team_sees_it(
    world: World, phone: TestClient, login: Callable[[str], TestClient]
) -> None:
    raw = gps_jpeg()
    assert Image.open(io.BytesIO(raw)).getexif().get_ifd(GPS_IFD)
    res = phone.post("/p/api/photos", content=raw, headers={"Content-Type": "image/jpeg"})
    assert res.status_code == 201, res.text
    assert res.json()["detail"] == "Foto enviada a su equipo médico."
    assert res.headers["cache-control"].startswith("no-store")
    [image] = stored(world.db, world.patient_a2)
    kept = Image.open(io.BytesIO(image))
    assert not kept.getexif().get_ifd(GPS_IFD)
    assert not kept.getexif()
    assert kept.size == (800, 600)  # re-encoded at the stored size
    assert audit_rows(world.db, "wound_photo_sent")
    # the team's side
    nurse = login("coordinator")
    [item] = nurse.get(f"/api/v1/patients/{world.patient_a2}/wound-photos").json()
    assert nurse.get(item["image_url"]).content == image
    # the phone's screen lists it in the patient's language
    page = phone.get("/p/photos")
    assert page.status_code == 200
    assert "Fotos ya enviadas" in page.text
    assert 'capture="environment"' in page.text


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("index.html", "<script>alert(1)</script>")
    return out.getvalue()


@pytest.mark.parametrize(
    ("make", "status", "sentence"),
    [
        pytest.param(
            lambda: gps_jpeg((3000, 3000)) + b"\0" * 400_000,
            413,
            "Esta foto es demasiado grande (como máximo 0.3 MB).",
            id="oversized",
        ),
        pytest.param(
            lambda: b"%PDF-1.4\n%...\n",
            415,
            "Este archivo no es una foto.",
            id="non-image",
        ),
        pytest.param(
            lambda: gps_jpeg() + zip_bytes(),
            422,
            "Este archivo contiene algo más que una foto y no se ha guardado.",
            id="jpeg+zip",
        ),
        pytest.param(
            lambda: gps_jpeg() + b"<html><body><script>x()</script></body></html>",
            422,
            "Este archivo contiene algo más que una foto y no se ha guardado.",
            id="jpeg+html",
        ),
    ],
)
def test_a_file_that_is_not_just_a_photo_is_refused_in_the_patient_s_language(
    world: World, phone: TestClient, make: Callable[[], bytes], status: int, sentence: str
) -> None:
    res = phone.post("/p/api/photos", content=make(), headers={"Content-Type": "image/jpeg"})
    assert res.status_code == status
    assert res.json()["detail"].startswith(sentence), res.json()
    assert stored(world.db, world.patient_a2) == []
    assert audit_rows(world.db, "wound_photo_sent") == []


def test_only_an_enrolled_phone_may_send_a_photo(world: World, anonymous: TestClient) -> None:
    res = anonymous.post("/p/api/photos", content=gps_jpeg())
    assert res.status_code == 401
    with psycopg.connect(world.db) as conn:
        assert conn.execute("SELECT count(*) FROM wound_photos").fetchone() == (0,)


def test_another_site_cannot_send_a_photo_for_the_patient(world: World, phone: TestClient) -> None:
    res = phone.post(
        "/p/api/photos", content=gps_jpeg(), headers={"Origin": "https://evil.example"}
    )
    assert res.status_code == 403
    assert stored(world.db, world.patient_a2) == []


def test_the_reminders_words_come_in_the_patient_s_language(phone: TestClient) -> None:
    texts = phone.get("/p/api/reminders/texts").json()
    assert texts["morning_vitals"] == {
        "title": "Mi seguimiento",
        "body": "Es hora de medir su tensión arterial y su temperatura.",
    }
    assert texts["morning_weight"]["body"] == (
        "Es hora de pesarse: después de ir al baño, antes del desayuno, con ropa ligera."
    )
    assert "default" in texts


MINE = (
    "patient/photos.py",
    "patient/photo_intake.py",
    "patient/reminders.py",
    "templates/patient/photos.html",
    "templates/patient/_reminders.html",
)


def test_every_word_of_the_photo_and_reminder_screens_exists_in_eight_languages() -> None:
    method_map = [("patient/**.py", "python"), ("templates/patient/**.html", "jinja2")]
    found = {
        message
        for path, _line, message, _comments, _context in extract_from_dir(
            str(API), method_map, keywords={"t": None, "T_": None}
        )
        if path in MINE and isinstance(message, str)
    } | {"Wound photos"}
    assert len(found) > 20
    for lang in LANGUAGES:
        with (API / "locales" / lang / "LC_MESSAGES" / "patient.po").open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        missing = sorted(m for m in found if not getattr(catalog.get(m), "string", ""))
        assert not missing, (lang, missing)
