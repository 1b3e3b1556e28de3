-- Readings that arrived late (a home back online, a device's memory synced): ingest marks
-- the patient and the earliest such reading in the same transaction as the rows; the
-- alerts engine claims the marks (DELETE ... RETURNING) in the transaction that opens the
-- alerts for episodes that ended before their data arrived. A mark outlives an engine
-- restart: nothing late is left unexamined.
CREATE TABLE IF NOT EXISTS late_readings (
    patient_id  bigint PRIMARY KEY REFERENCES patients,
    since       timestamptz NOT NULL,
    marked_at   timestamptz NOT NULL DEFAULT now()
);

-- An alert for such an episode: opened after the fact, the condition already cleared,
-- latched until a person acknowledges it whatever its priority.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS late boolean NOT NULL DEFAULT false;
