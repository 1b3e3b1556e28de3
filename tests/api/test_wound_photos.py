"""Issue 20, wound photos on the team's side: a clinician of the patient's team sees the
photo (each view audited, never cached), another team does not, the home physician only
once the team shares it; an open page hears of a new photo over the live stream."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable

import httpx
import psycopg
from fastapi.testclient import TestClient
from PIL import Image

from api.common.wound_photos import store_photo
from api.patient.photo_intake import PhotoLimits, clean_photo
from tests.api.conftest import LiveApi, World, audit_rows

LIMITS = PhotoLimits(max_bytes=5_000_000, max_pixels=30_000_000, max_side_px=1024)


def a_photo(db: str, patient_id: int) -> int:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (180, 60, 50)).save(out, "JPEG")
    photo = clean_photo(out.getvalue(), LIMITS)
    with psycopg.connect(db, autocommit=True) as conn:
        return store_photo(conn, patient_id, photo.jpeg, photo.width_px, photo.height_px)


def test_the_team_sees_the_photo_and_each_view_is_audited(
    world: World, login: Callable[[str], TestClient]
) -> None:
    photo_id = a_photo(world.db, world.patient_a)
    nurse = login("coordinator")
    listed = nurse.get(f"/api/v1/patients/{world.patient_a}/wound-photos")
    assert listed.status_code == 200
    assert listed.headers["cache-control"] == "no-store"
    [item] = listed.json()
    assert item["photo_id"] == photo_id
    assert item["shared_with_physician"] is False
    assert (item["width_px"], item["height_px"]) == (640, 480)
    image = nurse.get(item["image_url"])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/jpeg"
    assert image.headers["cache-control"] == "no-store"
    assert image.headers["x-content-type-options"] == "nosniff"
    assert Image.open(io.BytesIO(image.content)).size == (640, 480)
    nurse.get(item["image_url"])
    views = audit_rows(world.db, "wound_photo_viewed")
    assert len(views) == 2  # one row per view
    assert all(v[1] == world.patient_a and v[2] == {"photo_id": photo_id} for v in views)
    assert audit_rows(world.db, "wound_photos_read")


def test_another_team_and_a_stranger_cannot_see_it(
    world: World, login: Callable[[str], TestClient], anonymous: TestClient
) -> None:
    photo_id = a_photo(world.db, world.patient_a)
    url = f"/api/v1/patients/{world.patient_a}/wound-photos/{photo_id}/image"
    assert login("other").get(url).status_code == 403
    assert anonymous.get(url).status_code == 401
    # the photo's id under another patient of the team is not found
    wrong = f"/api/v1/patients/{world.patient_a2}/wound-photos/{photo_id}/image"
    refused = login("physician").get(wrong)
    assert refused.status_code == 404
    assert refused.json() == {"detail": "This photo does not exist."}
    assert audit_rows(world.db, "wound_photo_viewed") == []


def test_sharing_with_the_home_physician_is_the_team_s_choice_and_audited(
    world: World, login: Callable[[str], TestClient]
) -> None:
    photo_id = a_photo(world.db, world.patient_a)
    doctor = login("physician")
    url = f"/api/v1/patients/{world.patient_a}/wound-photos/{photo_id}/sharing"
    res = doctor.put(url, json={"shared_with_physician": True})
    assert res.status_code == 200
    assert res.json()["shared_with_physician"] is True
    assert len(audit_rows(world.db, "wound_photo_shared")) == 1
    assert doctor.put(url, json={"shared_with_physician": False}).status_code == 200
    assert len(audit_rows(world.db, "wound_photo_unshared")) == 1
    assert login("other").put(url, json={"shared_with_physician": True}).status_code == 403


def test_an_open_page_hears_of_a_new_photo(
    world: World, live_api: Callable[[str], LiveApi]
) -> None:
    api = live_api("coordinator")
    heard: list[dict[str, object]] = []
    ready = threading.Event()

    def listen() -> None:
        with httpx.stream(
            "GET", f"{api.base_url}/api/v1/events", cookies=api.cookies, timeout=20
        ) as stream:
            event = None
            for line in stream.iter_lines():
                ready.set()
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "reported":
                    heard.append(json.loads(line[6:]))
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(10)
    threading.Event().wait(0.5)  # the stream is registered
    a_photo(world.db, world.patient_b)  # another team's patient: not told
    a_photo(world.db, world.patient_a)
    thread.join(15)
    assert heard == [{"patients": [world.patient_a], "what": "wound_photo"}]


def test_the_home_physician_sees_a_photo_only_once_the_team_shared_it(
    world: World, login: Callable[[str], TestClient], anonymous: TestClient
) -> None:
    photo_id = a_photo(world.db, world.patient_a)
    doctor = login("physician")
    made = doctor.post(
        f"/api/v1/patients/{world.patient_a}/share-links",
        json={"language": "es", "second_code": False},
    )
    assert made.status_code == 201, made.text
    url = made.json()["url"]
    path = url[url.index("/s/") :]
    before = anonymous.get(path)
    assert before.status_code == 200
    assert "data:image/jpeg" not in before.text
    assert "Fotos de la herida" not in before.text
    doctor.put(
        f"/api/v1/patients/{world.patient_a}/wound-photos/{photo_id}/sharing",
        json={"shared_with_physician": True},
    )
    after = anonymous.get(path)
    assert "Fotos de la herida compartidas por el equipo médico" in after.text
    assert after.text.count("data:image/jpeg;base64,") == 1  # inside the page: no image URL
    assert "wound-photos/" not in after.text
    assert after.headers["cache-control"].startswith("no-store")
    views = audit_rows(world.db, "share_view")
    assert f"wound_photo:{photo_id}" in views[-1][2]["shown"]  # type: ignore[index]
    assert f"wound_photo:{photo_id}" not in views[0][2]["shown"]  # type: ignore[index]


def test_a_bad_sharing_answer_is_a_sentence_not_a_500(
    world: World, login: Callable[[str], TestClient]
) -> None:
    photo_id = a_photo(world.db, world.patient_a)
    url = f"/api/v1/patients/{world.patient_a}/wound-photos/{photo_id}/sharing"
    nurse = login("coordinator")
    res = nurse.put(url, json={"shared_with_physician": "maybe"})
    assert res.status_code == 422
    assert res.json() == {"detail": "shown to the home physician: yes or no is needed."}
    french = nurse.put(url, json={}, headers={"Accept-Language": "fr"})
    assert french.json() == {"detail": "visible par le médecin traitant : obligatoire."}
