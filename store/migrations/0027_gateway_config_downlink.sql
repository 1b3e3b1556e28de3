-- Each device's Bluetooth address, so the backend itself can tell a gateway which devices
-- to serve (its retained devices/{gateway}/config downlink lists them by id and address;
-- the gateway pairs with nothing else). NULL for a device that is not paired over
-- Bluetooth (a pain diary typed into the hub).
ALTER TABLE devices ADD COLUMN IF NOT EXISTS ble_address text;
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint WHERE conname = 'devices_ble_address_form'
    ) THEN
        ALTER TABLE devices ADD CONSTRAINT devices_ble_address_form
            CHECK (ble_address ~ '^[0-9A-F]{2}(:[0-9A-F]{2}){5}$');
    END IF;
END $$;
-- one device per address: two rows with one address would pair one device twice
CREATE UNIQUE INDEX IF NOT EXISTS devices_ble_address ON devices (ble_address)
    WHERE ble_address IS NOT NULL;

-- Gateways whose configuration changed and is not yet on the broker (a transactional
-- outbox): written in the same transaction as the change, cleared only once the broker
-- acknowledged the new retained configuration. A broker that is down delays the
-- publication, never loses it, and never fails the change itself.
CREATE TABLE IF NOT EXISTS gateway_config_pending (
    gateway_id  text PRIMARY KEY REFERENCES gateways ON DELETE CASCADE,
    changed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text
);
