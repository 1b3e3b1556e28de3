-- Consent, patient rights and retention (issue 21).
--
-- consents: what the patient decided, on which notice (version and language), when, and
-- who recorded it. A record is never edited: a withdrawal stamps withdrawn_at/by on the
-- record it ends, a new decision is a new row, so the history is kept whole.
--   monitoring  consent (given) or refusal (refused) of remote monitoring (télésurveillance)
--   sharing     consent to share with one named home physician (CSP L1110-4)
--   transfer    acknowledgement of the transfer to that physician outside the EU/EEA
--               (GDPR art. 49(1)(a)); it names the sharing consent it covers

CREATE TABLE IF NOT EXISTS consents (
    consent_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id          bigint NOT NULL REFERENCES patients,
    kind                text NOT NULL CHECK (kind IN ('monitoring', 'sharing', 'transfer')),
    decision            text NOT NULL CHECK (decision IN ('given', 'refused')),
    notice_version      integer NOT NULL CHECK (notice_version BETWEEN 1 AND 999),
    notice_language     text NOT NULL
        CHECK (notice_language IN ('fr', 'en', 'es', 'it', 'de', 'pt', 'ar', 'zh')),
    decided_at          timestamptz NOT NULL CHECK (decided_at < '2200-01-01'),
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    recorded_by         bigint NOT NULL REFERENCES clinicians,
    physician_name      text CHECK (length(physician_name) BETWEEN 1 AND 200),
    physician_email     text CHECK (length(physician_email) <= 254),
    physician_country   text CHECK (physician_country ~ '^[A-Z]{2}$'),
    sharing_consent_id  bigint REFERENCES consents,
    withdrawn_at        timestamptz,
    withdrawn_by        bigint REFERENCES clinicians,
    withdrawal_note     text CHECK (length(withdrawal_note) <= 1000),
    -- only monitoring can be refused; the others are given or simply absent
    CHECK (kind = 'monitoring' OR decision = 'given'),
    CHECK (kind <> 'sharing' OR (physician_name IS NOT NULL AND physician_country IS NOT NULL)),
    CHECK ((kind = 'transfer') = (sharing_consent_id IS NOT NULL)),
    CHECK (withdrawn_at IS NULL OR (decision = 'given' AND withdrawn_by IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS consents_patient_idx ON consents (patient_id, kind, decided_at);

-- A share link is made under one sharing consent: it names the physician, and
-- withdrawing that consent revokes its links at once. Links made before this migration
-- have none (they stay as they were; see api/README.md).
ALTER TABLE share_links ADD COLUMN IF NOT EXISTS consent_id bigint REFERENCES consents;
CREATE INDEX IF NOT EXISTS share_links_consent_idx ON share_links (consent_id)
    WHERE consent_id IS NOT NULL;

-- Requests of access and portability (CSP L1111-7: answered within 8 days).
CREATE TABLE IF NOT EXISTS access_requests (
    request_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id    bigint NOT NULL REFERENCES patients,
    kind          text NOT NULL CHECK (kind IN ('access', 'portability')),
    received_on   date NOT NULL CHECK (received_on < '2200-01-01'),
    due_on        date GENERATED ALWAYS AS (received_on + 8) STORED,
    note          text CHECK (length(note) <= 1000),
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    recorded_by   bigint NOT NULL REFERENCES clinicians,
    fulfilled_at  timestamptz,
    fulfilled_by  bigint REFERENCES clinicians,
    CHECK ((fulfilled_at IS NULL) = (fulfilled_by IS NULL))
);
CREATE INDEX IF NOT EXISTS access_requests_open_idx ON access_requests (patient_id, due_on)
    WHERE fulfilled_at IS NULL;

-- What each retention run purged: counts only, never an identity (no patient_id here).
CREATE TABLE IF NOT EXISTS purge_runs (
    run_id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at         timestamptz,
    clock_at            timestamptz NOT NULL,
    record_years        integer NOT NULL,
    address_days        integer NOT NULL,
    patients_purged     integer NOT NULL DEFAULT 0,
    rows_deleted        jsonb NOT NULL DEFAULT '{}',
    addresses_cleared   integer NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS purge_runs_finished_idx ON purge_runs (finished_at);
CREATE INDEX IF NOT EXISTS audit_log_at_idx ON audit_log (at);
