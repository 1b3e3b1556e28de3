"""What every audience of the API shares: the database, sessions and their cookies, i18n
and labels, guards and audit, the pydantic schemas, the reading of a patient's record, and the
credentials (share links) that one audience makes and another uses."""
