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


class IngestSettings(BaseModel):
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


class BrokerSettings(BaseModel):
    """Service accounts rendered into the broker's password file with the gateways."""

    ingest_password: SecretStr | None = None
    api_password: SecretStr | None = None


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
