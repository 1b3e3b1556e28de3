-- What each gateway reports of its Bluetooth devices (Device Information service,
-- battery level, when it last heard from the device), from its retained status message.
-- Ingest writes a row only for a device registered to the reporting gateway; the newest
-- report wins. Nothing here identifies a person: devices map to patients only through
-- enrollments.
CREATE TABLE IF NOT EXISTS device_info (
    device_id          text PRIMARY KEY REFERENCES devices ON DELETE CASCADE,
    gateway_id         text NOT NULL REFERENCES gateways,
    manufacturer       text,
    model              text,
    serial             text,
    firmware_revision  text,
    battery_pct        smallint CHECK (battery_pct BETWEEN 0 AND 100),
    last_seen          timestamptz,
    -- the device's clock minus the gateway's when the gateway last set it (Current
    -- Time): readings the device stamped before then may be off by as much
    clock_skew_s       integer,
    reported_at        timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
