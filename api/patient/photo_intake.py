"""A wound photo from the patient's phone, checked and re-encoded before anything is
stored. What a person uploads is untrusted bytes: the format is judged by content, not by
name or declared type; a file that is also something else (a ZIP or HTML page appended to
or hidden inside a JPEG) is refused; the pixel count is checked from the header before
any decoding (decompression bomb); the image is decoded and written anew as a baseline
JPEG in sRGB, upright, without EXIF (GPS position, device, time), comments or any other
metadata, so nothing of the original file's other bytes survives."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from api.patient.view import T_

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# the other format of a polyglot: ZIP records, markup a browser or interpreter would run
FOREIGN_MARKERS = (
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
    b"<html",
    b"<script",
    b"<svg",
    b"<!doctype",
    b"<body",
    b"<iframe",
    b"<?php",
    b"<?xml",
)
JPEG_QUALITY = 85


TOO_LARGE = T_(
    "This photo is too large (at most %(megabytes)s MB). Take it again with the camera button."
)
NOT_A_PHOTO = T_(
    "This file is not a photo. Send a photo in JPEG or PNG format, taken with the camera button."
)
NOT_ONLY_A_PHOTO = T_(
    "This file contains something other than a photo and was not kept. Take the photo again with the camera button."  # noqa: E501
)
TOO_MANY_PIXELS = T_(
    "This photo has too many pixels (at most %(megapixels)s megapixels). Take it again with the camera button."  # noqa: E501
)
DAMAGED = T_(
    "This photo could not be read; it may be damaged. Take it again with the camera button."
)
EMPTY = T_("No photo was received. Take a photo with the camera button.")


class PhotoRefused(ValueError):
    """A refusal the patient reads: an English message id of the ``patient`` catalogs and
    its values, and the HTTP status."""

    def __init__(self, status: int, message: str, **values: object) -> None:
        super().__init__(message % values if values else message)
        self.status = status
        self.message = message
        self.values = values


@dataclass(frozen=True)
class PhotoLimits:
    max_bytes: int
    max_pixels: int
    max_side_px: int


@dataclass(frozen=True)
class CleanPhoto:
    jpeg: bytes
    width_px: int
    height_px: int
    media_type: str = "image/jpeg"


def _jpeg_parts(data: bytes) -> tuple[int, list[bytes]]:
    """Where the JPEG's End Of Image marker ends, and its metadata segments (APPn, COM),
    walking the segments' lengths, then each scan's entropy-coded data to the next
    marker."""
    i, n = 2, len(data)
    metadata: list[bytes] = []
    while i + 1 < n:
        if data[i] != 0xFF:
            raise PhotoRefused(422, DAMAGED)
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:
            return i + 2, metadata
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            i += 2
            continue
        if i + 4 > n:
            break
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            metadata.append(data[i + 4 : i + 2 + length])
        i += 2 + length
        if marker == 0xDA:  # a scan: its data runs to the next marker (not FF00, not RSTn)
            while i + 1 < n and not (
                data[i] == 0xFF and data[i + 1] != 0x00 and not 0xD0 <= data[i + 1] <= 0xD7
            ):
                i += 1
    raise PhotoRefused(422, DAMAGED)  # no End Of Image: cut short


def _png_parts(data: bytes) -> tuple[int, list[bytes]]:
    """Where the PNG's IEND chunk ends, and its chunks other than the image data."""
    i, n = len(PNG_MAGIC), len(data)
    metadata: list[bytes] = []
    while i + 8 <= n:
        length = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        if kind != b"IDAT":
            metadata.append(data[i + 8 : i + 8 + length])
        i += 12 + length
        if kind == b"IEND":
            return i, metadata
    raise PhotoRefused(422, DAMAGED)


def _format_of(data: bytes) -> str:
    if data.startswith(JPEG_MAGIC):
        return "JPEG"
    if data.startswith(PNG_MAGIC):
        return "PNG"
    raise PhotoRefused(415, NOT_A_PHOTO)


def _refuse_polyglot(data: bytes, fmt: str) -> None:
    """Bytes after the image's end are another file (a ZIP's directory sits at the end of
    the file); metadata carrying ZIP records or markup is one hidden inside. The
    compressed image data is not searched: by chance it holds any short byte string."""
    end, metadata = _jpeg_parts(data) if fmt == "JPEG" else _png_parts(data)
    if end > len(data):
        raise PhotoRefused(422, DAMAGED)
    if data[end:].strip(b"\x00\r\n\t "):
        raise PhotoRefused(422, NOT_ONLY_A_PHOTO)
    for part in metadata:
        lowered = part.lower()
        if any(marker.lower() in lowered for marker in FOREIGN_MARKERS):
            raise PhotoRefused(422, NOT_ONLY_A_PHOTO)


def _to_srgb(image: Image.Image) -> Image.Image:
    """Phones tag photos with their own colour space (Display P3): converted to sRGB,
    so a wound's redness reads the same once the profile is gone."""
    icc = image.info.get("icc_profile")
    if icc:
        try:
            converted = ImageCms.profileToProfile(
                image.convert("RGB"),
                ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGB",
            )
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # an unreadable profile: the pixels as they are
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def clean_photo(data: bytes, limits: PhotoLimits) -> CleanPhoto:
    """The photo re-encoded for storage, or ``PhotoRefused`` saying why not."""
    if not data:
        raise PhotoRefused(422, EMPTY)
    if len(data) > limits.max_bytes:
        raise PhotoRefused(413, TOO_LARGE, megabytes=f"{limits.max_bytes / 1_000_000:g}")
    fmt = _format_of(data)
    _refuse_polyglot(data, fmt)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=[fmt]) as image:
                if image.format != fmt:
                    raise PhotoRefused(415, NOT_A_PHOTO)
                width, height = image.size
                if width * height > limits.max_pixels or getattr(image, "n_frames", 1) > 1:
                    raise PhotoRefused(
                        413,
                        TOO_MANY_PIXELS,
                        megapixels=f"{limits.max_pixels / 1_000_000:g}",
                    )
                image.load()
                upright = ImageOps.exif_transpose(image)
                rgb = _to_srgb(upright)
        except PhotoRefused:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            megapixels = f"{limits.max_pixels / 1_000_000:g}"
            raise PhotoRefused(413, TOO_MANY_PIXELS, megapixels=megapixels) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
            raise PhotoRefused(422, DAMAGED) from None
    rgb.thumbnail((limits.max_side_px, limits.max_side_px), Image.Resampling.LANCZOS)
    # Pillow carries the source's comment, EXIF and profile in ``info`` and writes some
    # of them back on save: a fresh image holds the pixels only
    bare = Image.new("RGB", rgb.size)
    bare.paste(rgb)
    out = io.BytesIO()
    bare.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return CleanPhoto(out.getvalue(), bare.width, bare.height)
