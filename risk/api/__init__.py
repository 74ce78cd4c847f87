"""The risk REST API under ``/api/v1/orgs/<org_slug>/risk/``."""
