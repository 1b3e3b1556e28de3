-- The patient's daily questionnaire (issue 20). One response per submission from the
-- phone; each answer is an observation with its code (LOINC where one exists, else the
-- questionnaire's local code system, see vitals/questionnaire.py). Numeric answers are
-- also written to `vitals` in the same transaction (device id `patient-app-<patient>`),
-- so the alert rules, the charts and the NOTIFY to the engine take them as readings.

CREATE TABLE IF NOT EXISTS questionnaire_responses (
    response_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id     bigint NOT NULL REFERENCES patients,
    protocol       text NOT NULL,
    version        integer NOT NULL CHECK (version >= 1),
    language       text NOT NULL,
    answered_at    timestamptz NOT NULL CHECK (answered_at < TIMESTAMPTZ '2200-01-01'),
    received_at    timestamptz NOT NULL DEFAULT now(),
    -- chosen by the phone for each submission: a retry after a lost answer is stored once
    submission_id  uuid NOT NULL,
    -- the patient's device credential that sent it (patient_credentials, migration 0016)
    credential_id  bigint,
    UNIQUE (patient_id, submission_id)
);
CREATE INDEX IF NOT EXISTS questionnaire_responses_patient_idx
    ON questionnaire_responses (patient_id, answered_at DESC);

CREATE TABLE IF NOT EXISTS questionnaire_answers (
    response_id  bigint NOT NULL REFERENCES questionnaire_responses ON DELETE CASCADE,
    item_id      text NOT NULL,
    metric_id    smallint NOT NULL REFERENCES metrics,
    code_system  text NOT NULL,
    code         text NOT NULL,
    value        double precision NOT NULL,
    PRIMARY KEY (response_id, item_id)
);
