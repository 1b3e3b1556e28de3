"""VAPID (RFC 8292) keys for Web Push: the private key stays in the settings
(``POSTOP_ALERTS__VAPID_PRIVATE_KEY``, PEM); the public key is the application server
key a browser subscribes with."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02


@dataclass(frozen=True)
class VapidKeys:
    private_pem: str
    public_key_b64url: str  # uncompressed P-256 point, base64url without padding


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def public_key_of(vapid: Vapid02) -> str:
    point = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(point)


def generate() -> VapidKeys:
    vapid = Vapid02()
    vapid.generate_keys()
    return VapidKeys(vapid.private_pem().decode(), public_key_of(vapid))


def load(private_pem: str) -> Vapid02:
    return Vapid02.from_pem(private_pem.encode())
