"""``postop``: one command line for every service and for the whole local stack.

Each subcommand builds the settings (environment, prefix ``POSTOP_``) and hands them to
that service's ``main``; services never import each other, only this launcher sees them
all.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel, ValidationError

from store.broker_acl import ADMIN_ACCOUNT, BrokerAccount
from vitals.settings import Settings

app = typer.Typer(help="postop: remote post-operative monitoring.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
broker_app = typer.Typer(help="MQTT broker accounts.", no_args_is_help=True)


def settings_help(*sections: str) -> str:
    """The environment variables a command reads, from the settings model itself (so the
    help never drifts from the code)."""
    names = ["POSTOP_DATABASE_URL", "POSTOP_LOG_LEVEL"]
    for section in sections:
        field = Settings.model_fields[section]
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            names += [f"POSTOP_{section.upper()}__{f.upper()}" for f in model.model_fields]
        else:
            names.append(f"POSTOP_{section.upper()}")
    return "Settings (environment variables, or a .env file): " + ", ".join(names) + "."


@contextmanager
def clear_failures(command: str) -> Iterator[None]:
    """A problem the person at the keyboard can fix is one line saying what and how, not a
    traceback (bugs still show theirs)."""
    import psycopg

    from postop.local_mosquitto import MosquittoUnavailable
    from postop.local_postgres import PostgresUnavailable
    from postop.stack import NoFreePort

    try:
        yield
    except (PostgresUnavailable, MosquittoUnavailable, NoFreePort) as exc:
        _fail(command, str(exc).strip().splitlines()[0])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "__".join(str(p) for p in first.get("loc", ())).upper()
        _fail(command, f"setting POSTOP_{where}: {first.get('msg', 'invalid')}")
    except psycopg.OperationalError as exc:
        _fail(
            command,
            f"cannot reach the database ({str(exc).strip().splitlines()[0]}):"
            " check POSTOP_DATABASE_URL, or run `postop up` for a local one",
        )
    except PermissionError as exc:
        _fail(
            command,
            f"no permission for {exc.filename or 'a file'}: choose another folder"
            " (--data-dir or POSTOP_DATA_DIR) or fix its owner",
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            _fail(
                command,
                "a port it needs is taken by another program: stop that program or choose"
                " another port (POSTOP_API__PORT, POSTOP_MQTT__PORT)",
            )
        raise


def _fail(command: str, message: str) -> None:
    typer.secho(f"postop {command}: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def _settings() -> Settings:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    return settings


def _serve(command: str, run: Callable[[Settings], None]) -> None:
    with clear_failures(command):
        run(_settings())


@app.command(epilog=settings_help("api", "mqtt", "alerts", "data_dir"))
def up(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="where the stack keeps its state (databases, broker, keys)",
            show_default=".postop in the current folder, or POSTOP_DATA_DIR",
        ),
    ] = None,
    patients: Annotated[int, typer.Option(min=0, max=50, help="simulated patients")] = 3,
    backfill_hours: Annotated[
        float,
        typer.Option(help="hours of simulated history sent at start-up, so trends show at once"),
    ] = 6.0,
) -> None:
    """Run everything locally: private PostgreSQL and Mosquitto, migrations, every service
    and a few simulated patients. Ctrl-C stops it all; the data is kept for next time."""
    with clear_failures("up"):
        from postop.stack import run_stack

        settings = _settings()
        run_stack(settings, data_dir or settings.data_dir, patients, backfill_hours)


@app.command("demo-code")
def demo_code(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="the data folder of `postop up`",
            show_default=".postop in the current folder, or POSTOP_DATA_DIR",
        ),
    ] = None,
) -> None:
    """The current second-factor code of `postop up`'s demo accounts. It reads only the
    demo secret that `postop up` kept in its data folder: no real account has one."""
    import pyotp

    from postop.stack import demo_totp_secret

    secret = demo_totp_secret(data_dir or _settings().data_dir)
    if secret is None:
        typer.echo("no demo accounts here: `postop up` makes them in its data folder", err=True)
        raise typer.Exit(1)
    totp = pyotp.TOTP(secret)
    left_s = totp.interval - int(datetime.now(UTC).timestamp()) % totp.interval
    typer.echo(f"{totp.now()}   (valid {left_s} s more; each code signs in once)")


app.add_typer(db_app, name="db")
app.add_typer(broker_app, name="broker")


@db_app.command("migrate", epilog=settings_help())
def db_migrate() -> None:
    """Apply the numbered SQL migrations that are missing (idempotent)."""
    from store.migrate import migrate

    with clear_failures("db migrate"):
        applied = migrate(_settings().database_url.get_secret_value())
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "nothing to apply"
    typer.echo(f"migrations: {names}")


def _broker_accounts(settings: Settings) -> list[BrokerAccount]:
    """The accounts the broker must know: from the database, plus the service accounts
    whose passwords come from the settings (these win)."""
    import psycopg

    from store.broker_acl import accounts_from_db, api_account, ingest_account
    from store.mqtt_accounts import hash_password

    services = [
        ingest_account(name, hash_password(secret.get_secret_value()))
        for name, secret in sorted(settings.broker.ingest_passwords.items())
    ]
    if settings.broker.api_password is not None:
        services.append(
            api_account("api", hash_password(settings.broker.api_password.get_secret_value()))
        )
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        return accounts_from_db(conn, services)


@broker_app.command("passwd")
def broker_passwd(path: Path) -> None:
    """Write Mosquitto's password file: every gateway from the database plus the service
    accounts (stored ones, and POSTOP_BROKER__INGEST_PASSWORDS, POSTOP_BROKER__API_PASSWORD)."""
    from store.mqtt_accounts import write_password_file

    count = write_password_file(path, _broker_accounts(_settings()))
    typer.echo(f"{count} accounts written to {path}")


@broker_app.command("dynsec")
def broker_dynsec(path: Path) -> None:
    """Write the dynamic-security plugin's file (client-id bindings and ACLs of every
    account, and the admin account, POSTOP_BROKER__ADMIN_PASSWORD) before the broker
    starts; a running broker is updated with `postop broker sync` instead."""
    import json

    from store.broker_acl import admin_account, dynsec_config
    from store.mqtt_accounts import hash_password

    settings = _settings()
    if settings.broker.admin_password is None:
        raise typer.BadParameter("set POSTOP_BROKER__ADMIN_PASSWORD")
    admin = admin_account(hash_password(settings.broker.admin_password.get_secret_value()))
    accounts = _broker_accounts(settings)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dynsec_config(accounts, admin), indent=1), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)
    typer.echo(f"{len(accounts)} accounts and their ACLs written to {path}")


@broker_app.command("sync")
def broker_sync() -> None:
    """Make a running broker's dynamic security match the database (over its control
    topic, as the admin account): run it before reloading the password file."""
    from postop import dynsec_control

    settings = _settings()
    if settings.broker.admin_password is None:
        raise typer.BadParameter("set POSTOP_BROKER__ADMIN_PASSWORD")
    mqtt = settings.mqtt
    kw = {"ca_file": str(mqtt.tls_ca_file) if mqtt.tls_ca_file else None}
    secret = settings.broker.admin_password.get_secret_value()
    accounts = _broker_accounts(settings)
    known = dynsec_control.list_clients(mqtt.host, mqtt.port, secret, **kw)
    missing = [a for a in accounts if a.name not in known]
    gone = sorted(known - {a.name for a in accounts} - {ADMIN_ACCOUNT})
    dynsec_control.add_accounts(mqtt.host, mqtt.port, secret, missing, **kw)
    dynsec_control.remove_accounts(mqtt.host, mqtt.port, secret, gone, **kw)
    typer.echo(f"broker accounts: {len(missing)} added, {len(gone)} removed")


@app.command(epilog=settings_help("mqtt", "ingest"))
def ingest() -> None:
    """Run one ingest worker (MQTT shared subscription -> PostgreSQL)."""
    from ingest.main import main

    _serve("ingest", main)


@app.command(epilog=settings_help("mqtt", "gateway"))
def gateway() -> None:
    """Run a home gateway (local link -> durable outbox -> MQTT)."""
    from gateway.main import main

    _serve("gateway", main)


@app.command(epilog=settings_help("alerts"))
def alerts() -> None:
    """Run the alerts engine (rules on new readings and on a periodic tick)."""
    from alerts.main import main

    _serve("alerts", main)


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
    seed: Annotated[
        int,
        typer.Option(
            help="Cohort seed (same seed, same cohort). Tune on seed 1; seed 2 is held out:"
            " report on it only once tuning is done."
        ),
    ] = 1,
    protocols: Annotated[
        Path | None,
        typer.Option(
            help="A folder of protocol YAML files to evaluate instead of the shipped ones."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where the report goes.")] = Path("bench/results"),
    workers: Annotated[int | None, typer.Option(min=1, help="Processes (default: CPUs).")] = None,
    cohort: Annotated[
        str,
        typer.Option(
            help="realistic (published physiology, comorbidities, device errors), reported"
            " (the same patients answering the daily questionnaire, with wound infections and"
            " thromboses first seen in their answers) or legacy (the first evaluation's tidy"
            " adults)."
        ),
    ] = "realistic",
    step_s: Annotated[
        int,
        typer.Option(
            min=60,
            max=900,
            help="Replay step: how often the rules are evaluated (60 s is within a minute of"
            " production's cadence; 300 s runs five times faster and can add up to 5 min to a"
            " time to alert).",
        ),
    ] = 60,
) -> None:
    """Measure alert quality: a simulated cohort with scripted deteriorations through the
    alert rules, scored against its ground truth (table, JSON and PNG in --out)."""
    from bench.alert_quality.run import run

    outcome = run(
        patients, days, seed, out, protocols, workers=workers, step_s=step_s, cohort=cohort
    )
    typer.echo(outcome.paths["markdown"].read_text(encoding="utf-8"))
    typer.echo(" ".join(f"{kind}: {path}" for kind, path in outcome.paths.items()))


@app.command(epilog=settings_help("retention"))
def purge() -> None:
    """Run the retention purge once now: records past their retention (20 years after the
    last care by default) are deleted everywhere, and client addresses leave audit rows
    after their own period. Prints what was purged (counts only)."""
    from datetime import UTC, datetime

    import psycopg

    from store.retention import RetentionRules
    from store.retention import purge as run_purge

    with clear_failures("purge"):
        settings = _settings()
        rules = RetentionRules(settings.retention.record_years, settings.retention.address_days)
        with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
            report = run_purge(conn, datetime.now(UTC), rules)
    rows = ", ".join(f"{t} {n}" for t, n in sorted(report.rows_deleted.items())) or "none"
    typer.echo(
        f"purge: {report.patients_purged} patients past {rules.record_years} years"
        f" (rows: {rows}); {report.addresses_cleared} client addresses cleared"
    )


@app.command(epilog=settings_help("retention"))
def retention() -> None:
    """Run the retention service: the purge once a day (checked every
    POSTOP_RETENTION__CHECK_S; a restart does not run it twice)."""
    import signal
    import threading

    from store.retention import RetentionRules, run_daily

    def serve(settings: Settings) -> None:
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        rules = RetentionRules(settings.retention.record_years, settings.retention.address_days)
        run_daily(
            settings.database_url.get_secret_value(),
            rules,
            stop,
            check_s=settings.retention.check_s,
        )

    _serve("retention", serve)


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

    from api.common.passwords import hash_password
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
    typer.echo(
        f"account {cid} created for {email} ({role}); it sets up its second factor"
        " (an authenticator app) at its first sign-in on the web page"
    )


@app.command("second-factor-key")
def second_factor_key() -> None:
    """Make a key that encrypts the clinicians' TOTP secrets in the database
    (POSTOP_API__SECOND_FACTOR_KEY, the same for every API process)."""
    from api.common.second_factor import new_key

    typer.echo(new_key())


@app.command("second-factor-reset")
def second_factor_reset(
    email: Annotated[str, typer.Option(help="the account's sign-in address")],
) -> None:
    """Forget an account's second factor, recovery codes and security keys (a lost
    phone): the person sets up a new one at their next sign-in. Written to the access
    log."""
    import psycopg
    from psycopg.types.json import Jsonb

    from api.common import second_factor

    settings = _settings()
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT clinician_id FROM clinicians WHERE lower(email) = lower(%s)", (email,)
        ).fetchone()
        if row is None:
            raise typer.BadParameter(f"no account for {email}")
        second_factor.reset(conn, int(row[0]))
        conn.execute(
            "INSERT INTO audit_log (actor, action, patient_id, detail)"
            " VALUES ('operator', 'second_factor_reset', NULL, %s)",
            (Jsonb({"clinician_id": int(row[0])}),),
        )
    typer.echo(f"second factor of {email} forgotten; it enrols again at its next sign-in")


@app.command(epilog=settings_help("api", "mqtt", "broker"))
def api() -> None:
    """Serve the web application and REST API."""
    from api.main import main

    _serve("api", main)


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

    with clear_failures("sim"):
        main(_settings(), kit, speed, seed, backfill_hours)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
