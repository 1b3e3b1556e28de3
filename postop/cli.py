"""``postop``: one command line for every service and for the whole local stack.

Each subcommand builds the settings (environment, prefix ``POSTOP_``) and hands them to
that service's ``main``; services never import each other, only this launcher sees them
all.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from vitals.settings import Settings

app = typer.Typer(help="postop: remote post-operative monitoring.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
broker_app = typer.Typer(help="MQTT broker accounts.", no_args_is_help=True)
app.add_typer(broker_app, name="broker")


def _settings() -> Settings:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    return settings


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the numbered SQL migrations that are missing (idempotent)."""
    from store.migrate import migrate

    applied = migrate(_settings().database_url.get_secret_value())
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "nothing to apply"
    typer.echo(f"migrations: {names}")


@broker_app.command("passwd")
def broker_passwd(path: Path) -> None:
    """Write Mosquitto's password file: every gateway from the database plus the ingest and
    api service accounts (POSTOP_BROKER__INGEST_PASSWORD, POSTOP_BROKER__API_PASSWORD)."""
    import psycopg

    from store.mqtt_accounts import hash_password, write_password_file

    settings = _settings()
    services = {
        name: hash_password(secret.get_secret_value())
        for name, secret in (
            ("ingest", settings.broker.ingest_password),
            ("api", settings.broker.api_password),
        )
        if secret is not None
    }
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        count = write_password_file(conn, path, services)
    typer.echo(f"{count} accounts written to {path}")


@app.command()
def ingest() -> None:
    """Run one ingest worker (MQTT shared subscription -> PostgreSQL)."""
    from ingest.main import main

    main(_settings())


@app.command()
def gateway() -> None:
    """Run a home gateway (local link -> durable outbox -> MQTT)."""
    from gateway.main import main

    main(_settings())


@app.command()
def alerts() -> None:
    """Run the alerts engine (rules on new readings and on a periodic tick)."""
    from alerts.main import main

    main(_settings())


@app.command()
def bench(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="ingest, scaling, node-red, rules, latency, trend (default: all)."),
    ] = None,
    quick: Annotated[bool, typer.Option(help="Small sizes: a smoke run, not a measure.")] = False,
) -> None:
    """Run the benchmarks (about seven minutes on two cores); results in bench/results/."""
    from bench.__main__ import main

    summary = main([*(names or []), *(["--quick"] if quick else [])])
    if summary["failures"]:
        raise typer.Exit(1)


@app.command("eval")
def eval_alerts(
    patients: Annotated[int, typer.Option(min=1, help="Simulated patients.")] = 200,
    days: Annotated[float, typer.Option(min=1, max=30, help="Days of follow-up.")] = 14.0,
    seed: Annotated[int, typer.Option(help="Cohort seed (same seed, same cohort).")] = 1,
    protocols: Annotated[
        Path | None,
        typer.Option(
            help="A folder of protocol YAML files to evaluate instead of the shipped ones."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where the report goes.")] = Path("bench/results"),
    workers: Annotated[int | None, typer.Option(min=1, help="Processes (default: CPUs).")] = None,
) -> None:
    """Measure alert quality: a simulated cohort with scripted deteriorations through the
    alert rules, scored against its ground truth (table, JSON and PNG in --out)."""
    from bench.alert_quality.run import run

    outcome = run(patients, days, seed, out, protocols, workers=workers)
    typer.echo(outcome.paths["markdown"].read_text(encoding="utf-8"))
    typer.echo(" ".join(f"{kind}: {path}" for kind, path in outcome.paths.items()))


@app.command()
def vapid() -> None:
    """Make a VAPID key pair for Web Push: the private key goes in the alerts settings
    (POSTOP_ALERTS__VAPID_PRIVATE_KEY), the public key in the web app."""
    from alerts.vapid import generate

    keys = generate()
    typer.echo(keys.private_pem.strip())
    typer.echo(f"application server (public) key: {keys.public_key_b64url}")


@app.command("clinician")
def clinician_add(
    email: Annotated[str, typer.Option(help="sign-in address")],
    name: Annotated[str, typer.Option(help="name shown to colleagues")],
    role: Annotated[str, typer.Option(help="coordinator, physician or admin")],
    team: Annotated[list[str], typer.Option(help="care team name, repeatable; made if new")],
    language: Annotated[str, typer.Option(help="fr or en")] = "fr",
    time_zone: Annotated[str, typer.Option(help="IANA zone for times on screen")] = "Europe/Paris",
) -> None:
    """Create a clinician account; the password is asked twice and never echoed."""
    import psycopg

    from api.passwords import hash_password
    from store.clinicians import DuplicateAccountError, create_clinician
    from store.provisioning import ensure_team

    if role not in ("coordinator", "physician", "admin"):
        raise typer.BadParameter("role must be coordinator, physician or admin")
    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        hashed = hash_password(password)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = _settings()
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        teams = [ensure_team(conn, t) for t in team]
        try:
            cid = create_clinician(conn, email, name, role, hashed, teams, language, time_zone)
        except DuplicateAccountError as exc:
            raise typer.BadParameter(str(exc)) from None
    typer.echo(f"account {cid} created for {email} ({role})")


@app.command()
def api() -> None:
    """Serve the web application and REST API."""
    from api.main import main

    main(_settings())


@app.command()
def sim(
    kit: Annotated[
        list[str],
        typer.Option(
            help="PATIENT_KEY=LINK_PORT (JSON local link) or PATIENT_KEY=LINK_PORT:HCI_PORT"
            " (BLE peripherals, the gateway's virtual controller on HCI_PORT), repeatable"
        ),
    ],
    speed: Annotated[
        float,
        typer.Option(
            help="simulated seconds per real second (above 1, readings run ahead of real time "
            "and ingest refuses them)"
        ),
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="seed of the physiological models")] = 1,
    backfill_hours: Annotated[
        float, typer.Option(help="first send this many hours of past readings, as fast as possible")
    ] = 0.0,
) -> None:
    """Simulate the devices of one or more kits: as Bluetooth LE peripherals on a virtual
    radio (KEY=LINK_PORT:HCI_PORT), or over the gateway's local link (KEY=LINK_PORT)."""
    from firmware_sim.main import main

    main(_settings(), kit, speed, seed, backfill_hours)


@app.command()
def up(
    data_dir: Annotated[Path | None, typer.Option(help="where the stack keeps its state")] = None,
    patients: Annotated[int, typer.Option(min=0, max=50, help="simulated patients")] = 3,
    backfill_hours: Annotated[
        float,
        typer.Option(help="hours of simulated history sent at start-up, so trends show at once"),
    ] = 6.0,
) -> None:
    """Run everything locally: private PostgreSQL and Mosquitto, migrations, every service
    and a few simulated patients. Ctrl-C stops it all; the data is kept for next time."""
    from postop.stack import run_stack

    settings = _settings()
    run_stack(settings, data_dir or settings.data_dir, patients, backfill_hours)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
