"""Settings for every service, read from the environment (prefix ``POSTOP_``, nested
groups with ``__``: ``POSTOP_MQTT__PORT=8883``) or a ``.env`` file.

Built once in each ``main()`` and passed down; nothing reads them at import time.
Secrets (database password, MQTT passwords, VAPID key) come only from here.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class MqttSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: SecretStr | None = None
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    keepalive_s: int = 30
    # the broker unreachable this long: services log an error line, then one a minute
    down_log_s: float = Field(default=60.0, gt=0)


class IngestSettings(BaseModel):
    # the broker binds each account to one client id, its name: every worker has its own
    # MQTT account, and this must equal that account's name (POSTOP_MQTT__USERNAME)
    client_id: str = "ingest-1"
    # the broker keeps this worker's session (and queues its share of messages) this long
    # after a disconnect; 0 ends it at once: use 0 for one last run of a retired worker
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    share_group: str = "ingest"
    batch_max_readings: int = Field(default=20_000, ge=1)
    batch_max_messages: int = Field(default=200, ge=1)
    batch_max_wait_s: float = Field(default=0.2, gt=0)
    receive_maximum: int = Field(default=1000, ge=1, le=65535)
    future_tolerance_s: float = Field(default=300.0, ge=0)
    refresh_aggregates_s: float = Field(default=60.0, gt=0)
    # a flood of bad messages must fill neither the disk nor hide: beyond this many dead
    # letters a gateway an hour, they are only counted (dead_letter_budget.dropped)
    dead_letters_per_gateway_hour: int = Field(default=1000, ge=0)
    dead_letter_payload_bytes: int = Field(default=4096, ge=0)  # prefix kept of each


class GatewaySettings(BaseModel):
    gateway_id: str = "gw-demo-1"
    outbox_path: Path = Path(".postop/gateway-outbox.sqlite3")
    link_host: str = "127.0.0.1"
    link_port: int = 7701
    device_timezone: str = "UTC"
    upload_batch_max: int = Field(default=1000, ge=1, le=5000)
    upload_window: int = Field(default=4, ge=1, le=64)
    upload_linger_s: float = Field(default=0.5, ge=0)
    # rows stay in the outbox until ingest confirms the commit; unconfirmed, they are resent
    ack_timeout_s: float = Field(default=30.0, gt=0)
    # Bluetooth LE central: bumble HCI transport (usb:0, hci-socket:0, tcp-client:HOST:PORT);
    # None: no radio, only the local link
    hci_transport: str | None = None
    ble_bonds_path: Path = Path(".postop/gateway-bonds.json")


class AlertsSettings(BaseModel):
    tick_s: float = Field(default=30.0, gt=0)
    debounce_s: float = Field(default=0.2, ge=0)
    protocol_dir: Path | None = None  # extra or replacement protocol files (*.yaml)
    vapid_private_key: SecretStr | None = None
    vapid_subject: str = "mailto:care-team@postop.invalid"
    push_max_attempts: int = Field(default=5, ge=1)
    # a technical alert to every enrolled team when no reading from any gateway arrived
    # for this long (a dead broker, ingest or network: every rule is blind)
    stale_data_s: float = Field(default=900.0, gt=0)
    # Web Push endpoints on private addresses or plain http (tests' local endpoint only)
    push_allow_private_endpoints: bool = False


class BrokerSettings(BaseModel):
    """Service accounts rendered into the broker's accounts with the gateways, and the
    admin account that makes a running broker's dynamic security match the database."""

    # one account per ingest worker, named like its client id: {"ingest-1": "...", ...}
    ingest_passwords: dict[str, SecretStr] = Field(default_factory=dict)
    api_password: SecretStr | None = None
    admin_password: SecretStr | None = None


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    # the public half of the alerts engine's VAPID key, given to browsers that subscribe
    vapid_public_key: str | None = None
    session_hours: float = Field(default=12.0, gt=0, le=24 * 7)
    # behind a TLS-terminating proxy the app sees http: force the cookie's Secure flag
    secure_cookies: bool = False
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_s: int = Field(default=900, ge=1)
    pool_max_size: int = Field(default=10, ge=1)
    # /metrics for Prometheus: open on loopback, or guarded by this bearer token
    metrics_token: SecretStr | None = None
    # shared links (home physicians): requests per minute per client address
    share_requests_per_minute: int = Field(default=120, ge=1)
    # where people reach the app (https://postop.example.org): absolute links (share
    # links, Web Push) are built on it, so they survive a change of port or host
    public_base_url: str | None = Field(default=None, pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$")
    # readiness re-probes the broker (one MQTT CONNECT) at most this often
    ready_broker_every_s: float = Field(default=5.0, gt=0)
    # on shutdown, requests in flight get this long to finish; then open responses (the
    # team pages' live streams, which never finish) are ended and their pages reconnect
    shutdown_grace_s: int = Field(default=3, ge=1, le=60)
    # sign-in attempts: login_max_failures counts per account from one address; these per
    # account from all addresses, and per address (one hospital proxy: many people)
    login_max_failures_account: int = Field(default=20, ge=1)
    login_max_failures_address: int = Field(default=200, ge=1)
    # proxies whose X-Forwarded-For/-Proto are believed (IPs or CIDRs); empty: none, the
    # socket's peer is the client
    trusted_proxies: list[str] = Field(default_factory=list)
    # Strict-Transport-Security on every answer (serve over HTTPS only when on)
    hsts: bool = False
    hsts_max_age_s: int = Field(default=31_536_000, ge=0)
    # Web Push endpoints on private addresses or plain http (tests' local endpoint only)
    push_allow_private_endpoints: bool = False
    # encrypts the clinicians' TOTP secrets in the database (a Fernet key: `postop
    # second-factor-key` makes one); without it they are stored as is (a warning at start)
    second_factor_key: SecretStr | None = None
    # security keys and passkeys (WebAuthn): the relying party's id (a domain, never an IP
    # address) and the origins the pages are served from; by default the public base
    # URL's, else localhost on this port (`postop up`: open http://localhost:8000)
    webauthn_rp_id: str | None = Field(default=None, pattern=r"^[a-z0-9.-]+$")
    webauthn_origins: list[str] = Field(default_factory=list)
    # wound photos from the patient app: the upload's size, the decoded image's pixels
    # (a decompression bomb is refused before it is decoded), the stored image's longest
    # side (re-encoded smaller: a 50-megapixel photo is not needed to judge a wound)
    photo_max_bytes: int = Field(default=15_000_000, ge=10_000, le=100_000_000)
    photo_max_pixels: int = Field(default=60_000_000, ge=10_000, le=200_000_000)
    photo_max_side_px: int = Field(default=2048, ge=256, le=8192)

    def link(self, path: str) -> str:
        """``path`` on the public base URL; the bare path when none is configured."""
        return self.public_base_url.rstrip("/") + path if self.public_base_url else path


class RetentionSettings(BaseModel):
    """How long records are kept (store/retention.py). French rules keep a medical record
    20 years after the last stay or consultation (Code de la santé publique R1112-7;
    longer for a minor: raise it for paediatric teams, postop stores no birth date)."""

    record_years: int = Field(default=20, ge=1, le=100)
    # client addresses in audit rows and sign-in counters: the CNIL recommends keeping
    # access logs 6 months to 1 year (recommandation journalisation, 2021)
    address_days: int = Field(default=365, ge=1)
    # the service checks this often whether a day has passed since the last run
    check_s: float = Field(default=600.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="POSTOP_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/postop")
    data_dir: Path = Path(".postop")
    log_level: str = "INFO"
    mqtt: MqttSettings = MqttSettings()
    ingest: IngestSettings = IngestSettings()
    gateway: GatewaySettings = GatewaySettings()
    api: ApiSettings = ApiSettings()
    broker: BrokerSettings = BrokerSettings()
    alerts: AlertsSettings = AlertsSettings()
    retention: RetentionSettings = RetentionSettings()
