"""The HTTP session Web Push deliveries go through: redirects are never followed (a
push service answers 201; a 3xx pointing elsewhere is a failure), no proxy from the
environment, and every connection is refused unless the address it actually reached
is public (``vitals.push_endpoints``), which closes the gap between our DNS check and
the resolution urllib3 does itself."""

from __future__ import annotations

import socket
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from vitals.push_endpoints import is_public_address


class _PublicPeerConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        peer = sock.getpeername()[0]
        if not is_public_address(str(peer)):
            sock.close()
            raise NewConnectionError(self, "push endpoint resolved to a non-public address")
        return sock


class _PublicPeerPool(HTTPSConnectionPool):
    ConnectionCls = _PublicPeerConnection


class _PublicOnlyAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"https": _PublicPeerPool}  # no http


class _PushSession(requests.Session):
    def __init__(self, allow_private: bool) -> None:
        super().__init__()
        self.trust_env = False
        self._allow_private = allow_private
        if not allow_private:
            self.mount("https://", _PublicOnlyAdapter())

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if not self._allow_private and not str(url).startswith("https://"):
            raise requests.exceptions.InvalidURL("push endpoints are https URLs")
        kwargs["allow_redirects"] = False
        return super().request(method, url, *args, **kwargs)


def push_session(*, allow_private: bool) -> requests.Session:
    return _PushSession(allow_private)
