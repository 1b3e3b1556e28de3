-- A low-battery request (issue 17): when a device's latest battery level is at or below
-- its protocol's battery rule ``below_pct``, the alerts engine asks the patient's phone
-- to charge it (or change its batteries) before the team hears of it at ``critical_pct``.
-- The request is a patient message written by the engine (no clinician, no alert: sent_by
-- and alert_id NULL, device_id set), at most one open per patient and device (the unique
-- index is the claim, committed before the push): one per low-battery episode. done_at when the
-- device reported a level above limit_pct again (done_reason 'charged'). device_id is
-- the readings' device (vitals.device_id, no foreign key, as there). push_outcome as
-- for 0022's requests.
ALTER TABLE patient_messages DROP CONSTRAINT IF EXISTS patient_messages_kind_check;
ALTER TABLE patient_messages ADD CONSTRAINT patient_messages_kind_check CHECK (kind IN
    ('measure_temperature', 'we_will_call', 'please_call_us', 'go_to_emergency',
     'measure_spo2', 'measure_pulse', 'measure_blood_pressure', 'measure_weight',
     'charge_oximeter', 'charge_patch', 'batteries_bp_cuff', 'batteries_thermometer',
     'batteries_scale', 'batteries_glucose_meter', 'charge_device'));
ALTER TABLE patient_messages
    ADD COLUMN IF NOT EXISTS device_id text,
    ADD COLUMN IF NOT EXISTS limit_pct real;
ALTER TABLE patient_messages DROP CONSTRAINT IF EXISTS patient_messages_done_reason_check;
ALTER TABLE patient_messages ADD CONSTRAINT patient_messages_done_reason_check CHECK (
    done_reason IN ('measured', 'alert_closed', 'charged'));
ALTER TABLE patient_messages DROP CONSTRAINT IF EXISTS patient_messages_sender_check;
ALTER TABLE patient_messages ADD CONSTRAINT patient_messages_sender_check CHECK (
    (sent_by IS NOT NULL AND alert_id IS NULL AND device_id IS NULL)
    OR (sent_by IS NULL AND alert_id IS NOT NULL AND metric_id IS NOT NULL
        AND measure_after IS NOT NULL AND device_id IS NULL)
    OR (sent_by IS NULL AND alert_id IS NULL AND device_id IS NOT NULL
        AND limit_pct IS NOT NULL));
CREATE UNIQUE INDEX IF NOT EXISTS patient_messages_one_per_battery_episode
    ON patient_messages (patient_id, device_id) WHERE device_id IS NOT NULL AND done_at IS NULL;
