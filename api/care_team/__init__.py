"""The care team's app: sign-in, dashboard, patient pages, administration, the REST API
and its live events (SSE)."""
