"""The REST listener (port 8000): runs, approvals, administration, health, OpenAPI."""
