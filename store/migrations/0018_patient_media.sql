-- Issue 20, the patient's own app: wound photos and reminders.

-- A wound photo as the patient's phone sent it, after the API validated it and re-encoded
-- it (JPEG, no metadata). Kept in the database, not in files: it is purged with the
-- patient's other records in one transaction, backed up and restored with them, and an
-- upload that is refused or interrupted leaves nothing behind.
CREATE TABLE IF NOT EXISTS wound_photos (
    photo_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id    bigint NOT NULL REFERENCES patients ON DELETE CASCADE,
    taken_at      timestamptz NOT NULL DEFAULT now(),  -- when the server received it
    media_type    text NOT NULL CHECK (media_type IN ('image/jpeg', 'image/png')),
    width_px      integer NOT NULL CHECK (width_px > 0),
    height_px     integer NOT NULL CHECK (height_px > 0),
    image         bytea NOT NULL CHECK (octet_length(image) > 0),
    -- the home physician sees a photo only once a clinician of the team shares it
    shared_with_physician  boolean NOT NULL DEFAULT false,
    shared_by     text,
    shared_at     timestamptz
);
CREATE INDEX IF NOT EXISTS wound_photos_by_patient ON wound_photos (patient_id, taken_at DESC);
-- already compressed (JPEG): no second compression attempt by TOAST
ALTER TABLE wound_photos ALTER COLUMN image SET STORAGE EXTERNAL;

-- The patient's phone subscribed to Web Push from the patient app (reminders only), with
-- the phone's credential (migration 0016): a phone revoked, replaced or past the
-- follow-up hears nothing more.
CREATE TABLE IF NOT EXISTS patient_push_subscriptions (
    subscription_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id       bigint NOT NULL REFERENCES patients ON DELETE CASCADE,
    credential_id    bigint NOT NULL REFERENCES patient_credentials ON DELETE CASCADE,
    endpoint         text NOT NULL UNIQUE,
    p256dh           text NOT NULL,
    auth             text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_success_at  timestamptz
);
CREATE INDEX IF NOT EXISTS patient_push_subscriptions_by_patient
    ON patient_push_subscriptions (patient_id);

-- Each reminder of each local day, claimed once (the primary key) before it is pushed:
-- a restarted alerts engine neither sends it twice nor forgets one it had not finished.
CREATE TABLE IF NOT EXISTS patient_reminders (
    patient_id    bigint NOT NULL REFERENCES patients ON DELETE CASCADE,
    reminder_id   text NOT NULL,
    local_date    date NOT NULL,  -- the day in the patient's time zone
    due_at        timestamptz NOT NULL,
    claimed_at    timestamptz NOT NULL DEFAULT now(),
    -- NULL while pushing; then delivered, failed, no_subscription, already_done, expired
    outcome       text CHECK (outcome IN
                  ('delivered', 'failed', 'no_subscription', 'already_done', 'expired')),
    settled_at    timestamptz,
    PRIMARY KEY (patient_id, reminder_id, local_date)
);
CREATE INDEX IF NOT EXISTS patient_reminders_unsettled ON patient_reminders (due_at)
    WHERE outcome IS NULL;
