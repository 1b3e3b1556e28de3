"""``postop api``: serve the FastAPI app with uvicorn."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from vitals.settings import Settings


def main(settings: Settings | None = None) -> None:
    settings = settings or Settings()
    uvicorn.run(
        create_app(settings),
        host=settings.api.host,
        port=settings.api.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


if __name__ == "__main__":
    main()
