-- A re-measurement request (issue 17): when an alert opened by a single abnormal spot
-- reading awaits its confirmation, the alerts engine asks the patient's phone to measure
-- that metric now. The request is a patient message written by the engine (no clinician:
-- sent_by NULL, alert_id set), at most one per alert (the unique index is the claim,
-- committed before the push). metric_id and measure_after say which reading answers it
-- (one of that metric taken at or after measure_after); done_at when one arrived or the
-- alert closed. push_outcome is NULL while the push is in flight (a restarted engine
-- pushes it again with the same RFC 8030 Topic), then delivered, failed or
-- no_subscription.
ALTER TABLE patient_messages ALTER COLUMN sent_by DROP NOT NULL;
ALTER TABLE patient_messages DROP CONSTRAINT IF EXISTS patient_messages_kind_check;
ALTER TABLE patient_messages ADD CONSTRAINT patient_messages_kind_check CHECK (kind IN
    ('measure_temperature', 'we_will_call', 'please_call_us', 'go_to_emergency',
     'measure_spo2', 'measure_pulse', 'measure_blood_pressure', 'measure_weight'));
ALTER TABLE patient_messages
    ADD COLUMN IF NOT EXISTS alert_id bigint REFERENCES alerts ON DELETE CASCADE,
    ADD COLUMN IF NOT EXISTS metric_id smallint,
    ADD COLUMN IF NOT EXISTS measure_after timestamptz,
    ADD COLUMN IF NOT EXISTS done_at timestamptz,
    ADD COLUMN IF NOT EXISTS done_reason text CHECK (done_reason IN ('measured', 'alert_closed')),
    ADD COLUMN IF NOT EXISTS push_outcome text
        CHECK (push_outcome IN ('delivered', 'failed', 'no_subscription')),
    ADD COLUMN IF NOT EXISTS push_settled_at timestamptz;
ALTER TABLE patient_messages DROP CONSTRAINT IF EXISTS patient_messages_sender_check;
ALTER TABLE patient_messages ADD CONSTRAINT patient_messages_sender_check CHECK (
    (sent_by IS NOT NULL AND alert_id IS NULL)
    OR (sent_by IS NULL AND alert_id IS NOT NULL AND metric_id IS NOT NULL
        AND measure_after IS NOT NULL));
CREATE UNIQUE INDEX IF NOT EXISTS patient_messages_one_per_alert
    ON patient_messages (alert_id) WHERE alert_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS patient_messages_requests_open
    ON patient_messages (patient_id) WHERE alert_id IS NOT NULL AND done_at IS NULL;
