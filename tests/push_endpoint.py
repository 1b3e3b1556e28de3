"""A real Web Push endpoint on loopback for the tests: it checks the VAPID authorization
(RFC 8292: ES256 over the JWT with the key ``k``, audience, expiry, subject) and decrypts
the aes128gcm body (RFC 8291) with the subscription's private key, as a push service and
browser would together; it can be told to answer an error for an endpoint."""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from alerts.webpush import PushSubscription


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass
class Received:
    endpoint_id: str
    payload: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Browser:
    """A subscription's secret half, kept by the 'browser' to decrypt."""

    private_key: ec.EllipticCurvePrivateKey
    auth: bytes


@dataclass
class PushEndpoint:
    expected_vapid_key: str
    server: ThreadingHTTPServer = field(init=False)
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    scripted: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    browsers: dict[str, Browser] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> PushEndpoint:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                endpoint.handle(self)

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def subscribe(self, subscription_id: int) -> PushSubscription:
        key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        endpoint_id = f"ep{subscription_id}"
        self.browsers[endpoint_id] = Browser(key, auth)
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return PushSubscription(
            subscription_id, f"{self.origin}/push/{endpoint_id}", b64e(public), b64e(auth)
        )

    def answer(self, endpoint_id: str, *statuses: tuple[int, dict[str, str]]) -> None:
        """The next answers for that endpoint (then 201)."""
        self.scripted[endpoint_id] = list(statuses)

    def _vapid_problem(self, authorization: str) -> str | None:
        match = re.fullmatch(r"vapid t=([^,\s]+),\s*k=([^,\s]+)", authorization.strip())
        if match is None:
            return "no vapid authorization"
        token, key = match.groups()
        if key != self.expected_vapid_key:
            return "unknown application server key"
        try:
            head, body, sig = token.split(".")
            raw = b64d(sig)
            signature = encode_dss_signature(
                int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
            )
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(key))
            public.verify(signature, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        except (ValueError, InvalidSignature):
            return "bad signature"
        claims = json.loads(b64d(body))
        if json.loads(b64d(head)).get("alg") != "ES256":
            return "not ES256"
        if claims.get("aud") != self.origin:
            return "wrong audience"
        if not time.time() < claims.get("exp", 0) <= time.time() + 86_400:
            return "bad expiry"
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            return "no subject"
        return None

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        endpoint_id = req.path.rsplit("/", 1)[-1]
        body = req.rfile.read(int(req.headers.get("Content-Length", "0")))
        problem = self._vapid_problem(req.headers.get("Authorization", ""))
        if problem is None and req.headers.get("Content-Encoding") != "aes128gcm":
            problem = "not aes128gcm"
        if problem is None and "TTL" not in req.headers:
            problem = "no TTL"
        if problem is not None:
            with self.lock:
                self.rejected.append(problem)
            req.send_response(403 if "signature" in problem or "key" in problem else 400)
            req.end_headers()
            return
        with self.lock:
            script = self.scripted.get(endpoint_id)
            if script:
                status, headers = script.pop(0)
                req.send_response(status)
                for name, value in headers.items():
                    req.send_header(name, value)
                req.end_headers()
                return
        browser = self.browsers[endpoint_id]
        plain = http_ece.decrypt(
            body, private_key=browser.private_key, auth_secret=browser.auth, version="aes128gcm"
        )
        with self.lock:
            headers = {k.lower(): v for k, v in req.headers.items()}
            self.received.append(Received(endpoint_id, json.loads(plain), headers))
        req.send_response(201)
        req.end_headers()
