"""The FastAPI application. For now: health (the process is up) and readiness (the
database answers and is migrated); the clinician pages and REST API come next."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool

from vitals.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    pool = AsyncConnectionPool(
        settings.database_url.get_secret_value(), min_size=1, max_size=10, open=False
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=False)
        yield
        await pool.close()

    app = FastAPI(title="postop", version="0.1.0", lifespan=lifespan)

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        """The API process is running."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"])
    async def ready() -> JSONResponse:
        """The database answers and carries the postop schema."""
        try:
            async with pool.connection(timeout=2) as conn:
                cur = await conn.execute("SELECT max(version) FROM schema_migrations")
                row = await cur.fetchone()
        except Exception as exc:  # any failure means not ready; say which, not the details
            return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, 503)
        return JSONResponse({"status": "ready", "schema_version": row[0] if row else None})

    return app
