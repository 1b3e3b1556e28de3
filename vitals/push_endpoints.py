"""Which Web Push endpoints we may POST to. A subscription's endpoint is a URL that a
browser (or anyone holding a session) hands us, and the alerts engine later POSTs to
it: without a check, that is a request to any address of our network (SSRF). Only
https URLs whose host resolves to public addresses pass; the API checks at subscription
time, the alerts engine again at send time (DNS may have changed), and its transport
checks the address it actually connects to. The tests' local endpoint is allowed only by
an explicit setting."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafePushEndpoint(ValueError):
    """Not an https URL of a public host: never to be contacted."""


class UnresolvedPushEndpoint(UnsafePushEndpoint):
    """The host name does not resolve now (may be temporary)."""


def is_public_address(address: str | IPAddress) -> bool:
    """A globally routable unicast address: not private, loopback, link-local,
    multicast, reserved, unspecified, shared (CGNAT) or documentation space."""
    ip = ipaddress.ip_address(address.split("%")[0] if isinstance(address, str) else address)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            ip = embedded
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_push_endpoint(url: str, *, allow_private: bool = False) -> None:
    """Raise ``UnsafePushEndpoint`` unless ``url`` may be POSTed to."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafePushEndpoint("not a URL") from None
    host = parts.hostname
    if not host or parts.username is not None or parts.password is not None:
        raise UnsafePushEndpoint("no host, or credentials in the URL")
    if allow_private:
        if parts.scheme not in ("https", "http"):
            raise UnsafePushEndpoint("not an http(s) URL")
        return
    if parts.scheme != "https":
        raise UnsafePushEndpoint("not an https URL")
    try:
        infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnresolvedPushEndpoint("the host does not resolve") from None
    addresses = {info[4][0] for info in infos}
    if not addresses or not all(is_public_address(str(a)) for a in addresses):
        raise UnsafePushEndpoint("the host is not a public address")
