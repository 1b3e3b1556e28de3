"""The home physician's window: the shared pages opened by a link, their printable
summary and FHIR export."""
