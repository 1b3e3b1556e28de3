"""Consent as data: the patient's monitoring consent or refusal, consent to share with a
named home physician, and acknowledgement of a transfer outside the EU/EEA, each on a
notice of a given version and language. Records are never edited: a withdrawal stamps the
record it ends, a new decision is a new row. Enrolment and sharing read the state here.

Withdrawing (or refusing) monitoring ends the patient's enrolments at that moment: no
reading is attributed to them any more. Withdrawing a sharing consent, or the transfer
acknowledgement a physician outside the EU/EEA needs, revokes that physician's links at
once. Both happen in the transaction that records the decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import psycopg

# the European Economic Area: the EU's 27 and Iceland, Liechtenstein, Norway. Countries
# with an adequacy decision (GDPR art. 45: Switzerland, the UK...) are treated as outside
# on purpose: the patient's acknowledgement costs one signature and covers every case.
EEA = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
        "IS",
        "LI",
        "NO",
    ]
)
# France's outermost regions have ISO codes of their own and are in the EU; the overseas
# collectivities (French Polynesia, New Caledonia...) are not, so they need the
# acknowledgement like any other country outside
EEA_FRANCE = frozenset(["GP", "MQ", "GF", "RE", "YT", "MF"])


# the languages every notice exists in (api/notices)
NOTICE_LANGUAGES = ("fr", "en", "es", "it", "de", "pt", "ar", "zh")


def in_eea(country: str | None) -> bool:
    return country is not None and (country in EEA or country in EEA_FRANCE)


class Monitoring(StrEnum):
    NONE = "none"  # nothing recorded yet
    GIVEN = "given"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class SharingConsent:
    consent_id: int
    physician_name: str
    physician_email: str | None
    physician_country: str
    transfer_acknowledged: bool

    @property
    def needs_transfer(self) -> bool:
        return not in_eea(self.physician_country)

    @property
    def usable(self) -> bool:
        """Links may be made under it now."""
        return self.transfer_acknowledged or not self.needs_transfer


@dataclass(frozen=True, slots=True)
class NewConsent:
    kind: str
    decision: str
    notice_version: int
    notice_language: str
    decided_at: datetime
    physician_name: str | None = None
    physician_email: str | None = None
    physician_country: str | None = None
    sharing_consent_id: int | None = None


def record(
    conn: psycopg.Connection, patient_id: int, new: NewConsent, by: int, now: datetime
) -> tuple[int, int]:
    """Insert one decision: (its id, enrolments ended). A monitoring refusal ends the
    enrolments at ``now``. The caller holds the transaction (and writes the audit row)."""
    row = conn.execute(
        "INSERT INTO consents (patient_id, kind, decision, notice_version, notice_language,"
        " decided_at, recorded_by, physician_name, physician_email, physician_country,"
        " sharing_consent_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING consent_id",
        (
            patient_id,
            new.kind,
            new.decision,
            new.notice_version,
            new.notice_language,
            new.decided_at,
            by,
            new.physician_name,
            new.physician_email,
            new.physician_country,
            new.sharing_consent_id,
        ),
    ).fetchone()
    assert row is not None
    ended = 0
    if new.kind == "monitoring" and monitoring_state(conn, patient_id) is not Monitoring.GIVEN:
        ended = end_enrolments(conn, patient_id, now)
    return int(row[0]), ended


def monitoring_state(conn: psycopg.Connection, patient_id: int) -> Monitoring:
    """The latest monitoring decision wins (by when the patient made it, then by when it
    was recorded)."""
    row = conn.execute(
        "SELECT decision, withdrawn_at IS NOT NULL FROM consents"
        " WHERE patient_id = %s AND kind = 'monitoring'"
        " ORDER BY decided_at DESC, consent_id DESC LIMIT 1",
        (patient_id,),
    ).fetchone()
    if row is None:
        return Monitoring.NONE
    if row[0] == "refused":
        return Monitoring.REFUSED
    return Monitoring.WITHDRAWN if row[1] else Monitoring.GIVEN


def sharing_consents(conn: psycopg.Connection, patient_id: int) -> list[SharingConsent]:
    """Sharing consents in force, each with whether its transfer is acknowledged."""
    rows = conn.execute(
        "SELECT s.consent_id, s.physician_name, s.physician_email, s.physician_country,"
        " EXISTS (SELECT 1 FROM consents t WHERE t.sharing_consent_id = s.consent_id"
        "   AND t.kind = 'transfer' AND t.withdrawn_at IS NULL)"
        " FROM consents s WHERE s.patient_id = %s AND s.kind = 'sharing'"
        " AND s.withdrawn_at IS NULL ORDER BY s.decided_at, s.consent_id",
        (patient_id,),
    ).fetchall()
    return [SharingConsent(int(r[0]), r[1], r[2], r[3], bool(r[4])) for r in rows]


def withdrawn_sharing_exists(conn: psycopg.Connection, patient_id: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM consents WHERE patient_id = %s AND kind = 'sharing'"
        " AND withdrawn_at IS NOT NULL LIMIT 1",
        (patient_id,),
    ).fetchone()
    return row is not None


@dataclass(frozen=True, slots=True)
class Withdrawal:
    kind: str
    enrolments_ended: int
    links_revoked: list[int]


def withdraw(
    conn: psycopg.Connection,
    patient_id: int,
    consent_id: int,
    by: int,
    at: datetime,
    note: str | None,
) -> Withdrawal | None:
    """Stamp the withdrawal and apply it: monitoring ends the enrolments, sharing (or a
    transfer acknowledgement) revokes the physician's links. None when the record is not
    this patient's, not in force, or a refusal."""
    row = conn.execute(
        "UPDATE consents SET withdrawn_at = %s, withdrawn_by = %s, withdrawal_note = %s"
        " WHERE consent_id = %s AND patient_id = %s AND withdrawn_at IS NULL"
        " AND decision = 'given' RETURNING kind, sharing_consent_id",
        (at, by, note, consent_id, patient_id),
    ).fetchone()
    if row is None:
        return None
    kind, sharing_id = str(row[0]), row[1]
    if kind == "monitoring":
        if monitoring_state(conn, patient_id) is Monitoring.GIVEN:
            # a later consent is still in force (this was an older record)
            return Withdrawal(kind, 0, [])
        return Withdrawal(kind, end_enrolments(conn, patient_id, at), [])
    if kind == "sharing":
        return Withdrawal(kind, 0, revoke_links(conn, consent_id, by))
    # a transfer acknowledgement: only a physician outside the EU/EEA depended on it
    country = conn.execute(
        "SELECT physician_country FROM consents WHERE consent_id = %s", (sharing_id,)
    ).fetchone()
    still = conn.execute(
        "SELECT 1 FROM consents WHERE sharing_consent_id = %s AND withdrawn_at IS NULL",
        (sharing_id,),
    ).fetchone()
    if country is not None and not in_eea(country[0]) and still is None:
        return Withdrawal(kind, 0, revoke_links(conn, int(sharing_id), by))
    return Withdrawal(kind, 0, [])


def end_enrolments(conn: psycopg.Connection, patient_id: int, at: datetime) -> int:
    """Close the patient's enrolments at ``at``; those starting later are removed (an
    enrolment cannot be empty). Readings already stored stay in the record."""
    gone = conn.execute(
        "DELETE FROM enrollments WHERE patient_id = %s AND lower(valid) >= %s", (patient_id, at)
    ).rowcount
    cut = conn.execute(
        "UPDATE enrollments SET valid = tstzrange(lower(valid), %s, '[)')"
        " WHERE patient_id = %s AND lower(valid) < %s"
        " AND (upper_inf(valid) OR upper(valid) > %s)",
        (at, patient_id, at, at),
    ).rowcount
    return int(gone) + int(cut)


def revoke_links(conn: psycopg.Connection, sharing_consent_id: int, by: int) -> list[int]:
    rows = conn.execute(
        "UPDATE share_links SET revoked_at = now(), revoked_by = %s"
        " WHERE consent_id = %s AND revoked_at IS NULL RETURNING link_id",
        (by, sharing_consent_id),
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def record_usual_consents(
    conn: psycopg.Connection,
    patient_id: int,
    by: int,
    language: str,
    physician: tuple[str, str] | None = None,
    notice_version: int = 1,
) -> None:
    """What a patient usually agrees to at discharge, recorded at once: monitoring, and
    with ``physician`` (name, country) sharing with them, plus the transfer when they
    practise outside the EU/EEA. For the demo stack and the tests' worlds; the team
    records each decision through the API."""
    now = datetime.now(UTC)
    lang = language if language in NOTICE_LANGUAGES else "en"
    record(conn, patient_id, NewConsent("monitoring", "given", notice_version, lang, now), by, now)
    if physician is None:
        return
    name, country = physician
    sharing, _ = record(
        conn,
        patient_id,
        NewConsent(
            "sharing",
            "given",
            notice_version,
            lang,
            now,
            physician_name=name,
            physician_country=country,
        ),
        by,
        now,
    )
    if not in_eea(country):
        record(
            conn,
            patient_id,
            NewConsent("transfer", "given", notice_version, lang, now, sharing_consent_id=sharing),
            by,
            now,
        )
