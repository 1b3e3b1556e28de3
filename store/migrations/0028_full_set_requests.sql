-- A full-set request (issue 17): when one waking reading is off (a pulse well above the
-- patient's usual, a pressure well below it, a raised temperature) and the readings that
-- would tell whether it matters are not fresh, the alerts engine asks the patient's phone
-- for all their measurements now (alerts/full_set.py). No clinician, no alert, no device:
-- metric_id is the first metric asked for, whose reading taken from measure_after on
-- answers the request (done_reason 'measured'); unanswered, it lapses after its
-- protocol's expires_s (done_reason 'expired'). At most one open per patient (the unique
-- index is the claim, committed before the push).
ALTER TABLE patient_messages DROP CONSTRAINT IF EXISTS patient_messages_kind_check;
ALTER TABLE patient_messages ADD CONSTRAINT patient_messages_kind_check CHECK (kind IN
    ('measure_temperature', 'we_will_call', 'please_call_us', 'go_to_emergency',
     'measure_spo2', 'measure_pulse', 'measure_blood_pressure', 'measure_weight',
     'charge_oximeter', 'charge_patch', 'batteries_bp_cuff', 'batteries_thermometer',
     'batteries_scale', 'batteries_glucose_meter', 'charge_device', 'measure_vitals'));
ALTER TABLE patient_messages DROP CONSTRAINT IF EXISTS patient_messages_done_reason_check;
ALTER TABLE patient_messages ADD CONSTRAINT patient_messages_done_reason_check CHECK (
    done_reason IN ('measured', 'alert_closed', 'charged', 'follow_up_ended', 'expired'));
ALTER TABLE patient_messages DROP CONSTRAINT IF EXISTS patient_messages_sender_check;
ALTER TABLE patient_messages ADD CONSTRAINT patient_messages_sender_check CHECK (
    (sent_by IS NOT NULL AND alert_id IS NULL AND device_id IS NULL)
    OR (sent_by IS NULL AND alert_id IS NOT NULL AND metric_id IS NOT NULL
        AND measure_after IS NOT NULL AND device_id IS NULL)
    OR (sent_by IS NULL AND alert_id IS NULL AND device_id IS NOT NULL
        AND limit_pct IS NOT NULL)
    OR (sent_by IS NULL AND alert_id IS NULL AND device_id IS NULL
        AND kind = 'measure_vitals' AND metric_id IS NOT NULL AND measure_after IS NOT NULL));
CREATE UNIQUE INDEX IF NOT EXISTS patient_messages_one_full_set_open
    ON patient_messages (patient_id) WHERE kind = 'measure_vitals' AND done_at IS NULL;
