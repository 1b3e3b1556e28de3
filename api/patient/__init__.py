"""The patient's own app on their phone."""
