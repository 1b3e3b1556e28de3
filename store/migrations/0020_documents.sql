-- Documents made for a patient: the end-of-monitoring report (one per language: French,
-- the home physician's, English) and the patient's own data export (right of access and
-- portability, L1111-7). Each keeps its PDF and its FHIR form (a DocumentReference for a
-- report, the complete Bundle for an export), gzip-compressed JSON. Sending a report
-- again makes a new edition and marks the previous one replaced, in one transaction; at
-- most one current edition per patient and language.

CREATE TABLE IF NOT EXISTS patient_documents (
    document_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id    bigint NOT NULL REFERENCES patients,
    kind          text NOT NULL CHECK (kind IN ('end_of_monitoring', 'patient_export')),
    language      text NOT NULL CHECK (language IN ('fr', 'en', 'es', 'it', 'de', 'pt', 'ar', 'zh')),
    period_start  timestamptz NOT NULL,
    period_end    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL,            -- 'clinician:<id>'
    pdf           bytea NOT NULL,
    pdf_sha256    bytea NOT NULL,
    fhir_json_gz  bytea NOT NULL,
    replaced_at   timestamptz,
    CHECK (period_end >= period_start)
);
CREATE INDEX IF NOT EXISTS patient_documents_patient_idx
    ON patient_documents (patient_id, kind, created_at);
CREATE UNIQUE INDEX IF NOT EXISTS patient_documents_current_report_uq
    ON patient_documents (patient_id, language)
    WHERE kind = 'end_of_monitoring' AND replaced_at IS NULL;
