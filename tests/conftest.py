"""Test-suite wide fixtures and the rule for service-only tests.

Tests marked ``services`` need PostgreSQL and Redis (the suite then runs in services mode:
``DATABASE_URL`` and ``REDIS_URL`` set, ``NEXOW_TEST_SERVICES=1``). Without them they skip with a
message saying why; with ``NEXOW_REQUIRE_SERVICES=1`` (set by CI) such a skip is a failure.
Browser tests (``browser``) likewise need Debian's Chromium and are mandatory in CI.
"""

from __future__ import annotations

import os
import shutil

import pytest

# Shared fixtures (organisations, members of each role, API keys) for every app's tests.
pytest_plugins = ["tests.fixtures_accounts"]

SERVICES_ON = os.environ.get("NEXOW_TEST_SERVICES") == "1"
REQUIRE_SERVICES = os.environ.get("NEXOW_REQUIRE_SERVICES") == "1"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def pytest_runtest_setup(item):
    if item.get_closest_marker("services") and not SERVICES_ON:
        reason = ("needs PostgreSQL and Redis: run the tests with NEXOW_TEST_SERVICES=1, "
                  "DATABASE_URL and REDIS_URL set (as .ci/run does)")
        pytest.fail(f"required in CI but not available: {reason}") if REQUIRE_SERVICES else pytest.skip(reason)
    if item.get_closest_marker("browser") and not CHROMIUM:
        reason = "needs Debian's Chromium (apt-get install chromium), as .ci/run installs it"
        pytest.fail(f"required in CI but not available: {reason}") if REQUIRE_SERVICES else pytest.skip(reason)


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Files written by a test (reports, uploads, mail) go to its own temporary folder."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
