"""``postop api``: serve the FastAPI app with uvicorn."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from vitals.settings import Settings


def server_config(settings: Settings) -> uvicorn.Config:
    """uvicorn as production runs it. Forwarded headers (X-Forwarded-For, -Proto) are
    believed only from ``api.trusted_proxies``: uvicorn's default believes any process
    on loopback, which let a forged header pick the address that sign-in throttling,
    the shared pages' rate limit and the audit log see."""
    trusted = settings.api.trusted_proxies
    return uvicorn.Config(
        create_app(settings),
        host=settings.api.host,
        port=settings.api.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=list(trusted) if trusted else [],
        # the live streams never end by themselves: without a grace, a shutdown waits
        # for them until the process is killed
        timeout_graceful_shutdown=settings.api.shutdown_grace_s,
    )


def main(settings: Settings | None = None) -> None:
    uvicorn.Server(server_config(settings or Settings())).run()


if __name__ == "__main__":
    main()
