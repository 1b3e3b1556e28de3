"""The relying party of the security keys, from the API's settings: what the operator
set, else the public base URL's host, else localhost on the API's port (an IP address is
never an RP id: browsers refuse it)."""

from __future__ import annotations

from api.common.security_keys import relying_party
from vitals.settings import ApiSettings


def test_the_settings_win() -> None:
    rp = relying_party(
        ApiSettings(
            public_base_url="https://other.example",
            webauthn_rp_id="postop.example.org",
            webauthn_origins=["https://postop.example.org/", "https://app.postop.example.org"],
        )
    )
    assert rp.rp_id == "postop.example.org"
    assert rp.origins == ("https://postop.example.org", "https://app.postop.example.org")


def test_the_public_base_url_gives_both() -> None:
    rp = relying_party(ApiSettings(public_base_url="https://postop.example.org:8443/app"))
    assert rp.rp_id == "postop.example.org"
    assert rp.origins == ("https://postop.example.org:8443",)


def test_postop_up_on_an_ip_address_offers_localhost() -> None:
    rp = relying_party(ApiSettings(public_base_url="http://127.0.0.1:8123"))
    assert rp.rp_id == "localhost"
    assert rp.origins == ("http://localhost:8123",)
    bare = relying_party(ApiSettings(port=9000))
    assert (bare.rp_id, bare.origins) == ("localhost", ("http://localhost:9000",))
