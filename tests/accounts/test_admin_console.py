"""The admin console at /console/: staff only, two-factor authentication required, and its
sign-in is the portal's (throttled, with the TOTP step)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.core.cache import cache

from nexow_site.admin_site import NexowAdminSite
from tests.accounts.authkit import PASSWORD, activate_totp, login, make_user, totp_code

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    cache.clear()
    settings.MFA_TOTP_TOLERANCE = 1
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield
    cache.clear()


def test_the_default_admin_site_is_the_console_so_model_registrations_land_there():
    from accounts.models import Organization, User

    assert isinstance(admin.site, NexowAdminSite)
    # The accounts app registers its models with @admin.register; the console serves them.
    assert User in admin.site._registry
    assert Organization in admin.site._registry


def test_a_session_that_skipped_the_second_factor_must_confirm_a_code_first(client):
    staff = make_user("ops@example.com", is_staff=True, is_superuser=True)
    secret = activate_totp(staff)
    client.force_login(staff)  # a session opened without the TOTP step
    response = client.get("/console/", follow=True)
    assert response.status_code == 403
    body = response.content.decode()
    assert 'href="/accounts/2fa/reauthenticate/?next=%2Fconsole%2F"' in body

    response = client.post("/accounts/2fa/reauthenticate/?next=/console/",
                           {"code": totp_code(secret)})
    assert response["Location"] == "/console/"
    assert client.get("/console/").status_code == 200


def test_staff_with_mfa_sees_the_registered_models(client):
    staff = make_user("ops@example.com", is_staff=True, is_superuser=True)
    secret = activate_totp(staff)
    login(client, staff.email, next="/console/")
    client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret)})
    body = client.get("/console/").content.decode()
    assert 'href="/console/accounts/organization/"' in body
    assert client.get("/console/accounts/organization/").status_code == 200


def test_anonymous_visitors_are_sent_to_the_portal_sign_in(client):
    response = client.get("/console/")
    assert response.status_code == 302
    assert response["Location"] == "/console/login/?next=/console/"
    response = client.get(response["Location"])
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fconsole%2F"


def test_a_member_who_is_not_staff_is_refused(client):
    client.force_login(make_user())
    response = client.get("/console/", follow=True)
    assert response.status_code == 403
    assert "not a staff account" in response.content.decode()


def test_staff_without_two_factor_is_refused_and_told_to_enable_it(client):
    client.force_login(make_user("ops@example.com", is_staff=True))
    response = client.get("/console/", follow=True)
    assert response.status_code == 403
    body = response.content.decode()
    assert "requires two-factor authentication" in body
    assert 'href="/accounts/2fa/"' in body


def test_staff_with_totp_signs_in_with_the_code_and_reaches_the_console(client):
    staff = make_user("ops@example.com", is_staff=True, is_superuser=True)
    secret = activate_totp(staff)
    response = login(client, staff.email, next="/console/")
    assert response["Location"] == "/accounts/2fa/authenticate/"
    response = client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret)})
    assert response.status_code == 302
    assert response["Location"] == "/console/"
    page = client.get("/console/")
    assert page.status_code == 200
    assert "Nexow console" in page.content.decode()


def test_console_sign_in_is_throttled_after_five_failures(client):
    make_user("ops@example.com", is_staff=True)
    for _ in range(5):
        assert login(client, "ops@example.com", "guess", next="/console/").status_code == 200
    response = login(client, "ops@example.com", PASSWORD, next="/console/")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_django_password_form_of_the_admin_is_not_served(client):
    # A POST to the stock admin login must not sign anyone in without the TOTP step.
    staff = make_user("ops@example.com", is_staff=True)
    activate_totp(staff)
    response = client.post("/console/login/", {"username": staff.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session
