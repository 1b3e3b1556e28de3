"""Wound photos from the patient app (issue 20): what is refused, and what survives of a
photo that is kept (pixels only: no EXIF, no GPS position, nothing of another format)."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from api.patient.photo_intake import (
    NOT_A_PHOTO,
    NOT_ONLY_A_PHOTO,
    TOO_LARGE,
    TOO_MANY_PIXELS,
    PhotoLimits,
    PhotoRefused,
    clean_photo,
)

LIMITS = PhotoLimits(max_bytes=2_000_000, max_pixels=30_000_000, max_side_px=1024)
GPS_IFD = 0x8825
ORIENTATION = 0x0112


def camera_jpeg(size: tuple[int, int] = (1200, 800), **save: object) -> bytes:
    """A phone's photo: EXIF with a GPS position and an orientation, a comment."""
    image = Image.new("RGB", size, (190, 70, 60))
    image.paste((240, 240, 240), (0, 0, size[0] // 4, size[1] // 4))  # a mark top-left
    exif = Image.Exif()
    exif[GPS_IFD] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    exif[0x010F] = "PhoneMaker"
    exif[ORIENTATION] = 6  # the camera was held turned: shown rotated 90° clockwise
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), comment=b"taken at home", **save)
    return out.getvalue()


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return out.getvalue()


def test_a_kept_photo_has_no_exif_no_gps_and_stands_upright() -> None:
    raw = camera_jpeg()
    assert Image.open(io.BytesIO(raw)).getexif().get_ifd(GPS_IFD)  # the source has one
    photo = clean_photo(raw, LIMITS)
    kept = Image.open(io.BytesIO(photo.jpeg))
    assert kept.format == "JPEG"
    assert not kept.getexif()  # no EXIF at all, GPS included
    assert b"Exif" not in photo.jpeg
    assert b"PhoneMaker" not in photo.jpeg
    assert b"taken at home" not in photo.jpeg
    assert "comment" not in kept.info
    # orientation 6 applied to the pixels: 1200x800 becomes portrait, scaled to 1024
    assert (photo.width_px, photo.height_px) == (683, 1024) == kept.size
    pixel = kept.getpixel((kept.width - 20, 20))
    assert isinstance(pixel, tuple)
    assert pixel[0] > 220  # the mark moved top-right


def test_a_png_is_kept_as_a_jpeg_without_its_text_chunks() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret note")
    out = io.BytesIO()
    Image.new("RGBA", (300, 200), (10, 200, 10, 255)).save(out, "PNG", pnginfo=info)
    photo = clean_photo(out.getvalue(), LIMITS)
    assert Image.open(io.BytesIO(photo.jpeg)).format == "JPEG"
    assert b"secret note" not in photo.jpeg


def test_an_oversized_file_is_refused_before_it_is_decoded() -> None:
    with pytest.raises(PhotoRefused) as refused:
        clean_photo(camera_jpeg() + b"\0" * LIMITS.max_bytes, LIMITS)
    assert refused.value.status == 413
    assert refused.value.message == TOO_LARGE
    assert "at most 2 MB" in str(refused.value)


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.7 not a photo", b"<html><body>hello</body></html>", b"GIF89a....", b"\0" * 100],
)
def test_a_file_that_is_not_a_jpeg_or_png_is_refused_by_its_content(data: bytes) -> None:
    with pytest.raises(PhotoRefused) as refused:
        clean_photo(data, LIMITS)
    assert refused.value.status == 415
    assert refused.value.message == NOT_A_PHOTO


def test_a_photo_named_like_a_photo_but_holding_a_gif_is_refused() -> None:
    out = io.BytesIO()
    Image.new("RGB", (10, 10)).save(out, "GIF")
    with pytest.raises(PhotoRefused):
        clean_photo(out.getvalue(), LIMITS)


def html_in_comment() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(
        out, "JPEG", comment=b"<html><script>fetch('/api')</script></html>"
    )
    return out.getvalue()


@pytest.mark.parametrize(
    "polyglot",
    [
        pytest.param(lambda: camera_jpeg() + zip_bytes(), id="jpeg+zip"),
        pytest.param(lambda: camera_jpeg() + b"<html><script>x()</script>", id="jpeg+html"),
        pytest.param(html_in_comment, id="html-in-jpeg-comment"),
        pytest.param(lambda: camera_jpeg(progressive=True) + zip_bytes(), id="progressive+zip"),
    ],
)
def test_a_polyglot_is_refused(polyglot: object) -> None:
    data = polyglot()  # type: ignore[operator]
    with pytest.raises(PhotoRefused) as refused:
        clean_photo(data, LIMITS)
    assert refused.value.status == 422
    assert refused.value.message == NOT_ONLY_A_PHOTO


def test_a_png_with_a_zip_after_its_end_is_refused() -> None:
    out = io.BytesIO()
    Image.new("RGB", (50, 50)).save(out, "PNG")
    with pytest.raises(PhotoRefused) as refused:
        clean_photo(out.getvalue() + zip_bytes(), LIMITS)
    assert refused.value.message == NOT_ONLY_A_PHOTO


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    out = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(out, "PNG")  # 400 megapixels in ~50 kB
    assert len(out.getvalue()) < LIMITS.max_bytes
    with pytest.raises(PhotoRefused) as refused:
        clean_photo(out.getvalue(), LIMITS)
    assert refused.value.status == 413
    assert refused.value.message == TOO_MANY_PIXELS


def test_a_cut_short_photo_is_refused() -> None:
    with pytest.raises(PhotoRefused) as refused:
        clean_photo(camera_jpeg()[:4000], LIMITS)
    assert refused.value.status == 422
