-- Alerts: protocols per patient, clinician overrides, the alert lifecycle with every
-- transition, push subscriptions, and the audit trail of people's actions.

ALTER TABLE patients ADD COLUMN IF NOT EXISTS protocol text NOT NULL DEFAULT 'digestive_surgery';
ALTER TABLE patients ADD COLUMN IF NOT EXISTS discharged_at timestamptz;
ALTER TABLE patients ADD COLUMN IF NOT EXISTS follow_up_ended_at timestamptz;
-- NEWS2 inputs that no device measures, recorded by the team
ALTER TABLE patients ADD COLUMN IF NOT EXISTS spo2_scale smallint NOT NULL DEFAULT 1
    CHECK (spo2_scale IN (1, 2));
ALTER TABLE patients ADD COLUMN IF NOT EXISTS on_oxygen boolean NOT NULL DEFAULT false;

CREATE TABLE IF NOT EXISTS threshold_overrides (
    patient_id  bigint NOT NULL REFERENCES patients,
    rule_id     text NOT NULL,
    param       text NOT NULL,
    value       double precision NOT NULL,
    set_by      text NOT NULL,
    set_at      timestamptz NOT NULL DEFAULT now(),
    reason      text NOT NULL,
    PRIMARY KEY (patient_id, rule_id, param)
);

CREATE TABLE IF NOT EXISTS alerts (
    alert_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id          bigint NOT NULL REFERENCES patients,
    rule_id             text NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('clinical', 'technical')),
    priority            text NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
    state               text NOT NULL CHECK (state IN ('active', 'acknowledged', 'resolved')),
    opened_at           timestamptz NOT NULL,
    condition_onset_at  timestamptz,
    condition_cleared_at timestamptz,
    acknowledged_at     timestamptz,
    acknowledged_by     text,
    resolved_at         timestamptz,
    resolved_by         text,
    resolution_note     text,
    escalation_tier     smallint NOT NULL DEFAULT 0,
    escalated_at        timestamptz,
    evidence            jsonb NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
-- one open alert per patient and rule: a flapping signal cannot open a second one
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_open_uq ON alerts (patient_id, rule_id)
    WHERE state <> 'resolved';
CREATE INDEX IF NOT EXISTS alerts_open_idx ON alerts (state, priority) WHERE state <> 'resolved';

CREATE TABLE IF NOT EXISTS alert_events (
    event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES alerts,
    at          timestamptz NOT NULL,
    transition  text NOT NULL,
    actor       text NOT NULL,
    note        text,
    evidence    jsonb
);
CREATE INDEX IF NOT EXISTS alert_events_alert_idx ON alert_events (alert_id, at);

CREATE TABLE IF NOT EXISTS push_subscriptions (
    subscription_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id          bigint NOT NULL REFERENCES care_teams,
    role             text NOT NULL CHECK (role IN ('coordinator', 'physician', 'admin')),
    endpoint         text NOT NULL UNIQUE,
    p256dh           text NOT NULL,
    auth             text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_success_at  timestamptz
);

CREATE TABLE IF NOT EXISTS push_deliveries (
    delivery_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id         bigint NOT NULL REFERENCES alerts,
    subscription_id  bigint,
    at               timestamptz NOT NULL DEFAULT now(),
    delivered        boolean NOT NULL,
    attempts         integer NOT NULL,
    error            text
);

CREATE TABLE IF NOT EXISTS audit_log (
    audit_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    patient_id  bigint,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_log_patient_idx ON audit_log (patient_id, at);
