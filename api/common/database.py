"""The API's database access: one pool of synchronous connections (FastAPI runs the
path operations in its thread pool) and the flavour, detected once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg_pool import ConnectionPool

from store.flavour import Flavour, detect


@dataclass
class Database:
    conninfo: str
    max_size: int = 10
    pool: ConnectionPool = field(init=False)
    _flavour: Flavour | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.pool = ConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=self.max_size,
            open=False,
            kwargs={"autocommit": True},
        )

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def connection(self, timeout_s: float = 10.0) -> Iterator[psycopg.Connection]:
        with self.pool.connection(timeout=timeout_s) as conn:
            yield conn

    def flavour(self, conn: psycopg.Connection) -> Flavour:
        if self._flavour is None:
            self._flavour = detect(conn)
        return self._flavour
