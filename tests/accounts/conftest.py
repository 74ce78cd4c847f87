"""Fixtures for the accounts tests come from ``tests.fixtures_accounts`` (loaded by the root
conftest for every app)."""
