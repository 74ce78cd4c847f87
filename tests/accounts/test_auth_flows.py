"""Sign-up, e-mail verification, login, password reset, two-factor authentication and
re-authentication, driven through the real pages with Django's test client and the locmem
mailbox; plus the audit entry each of these events leaves."""

from __future__ import annotations

import re

import pytest
from allauth.mfa.models import Authenticator
from django.core import mail
from django.core.cache import cache

from accounts import auth_events
from accounts.models import AuditEvent, User
from accounts.services import organization_create
from tests.accounts.authkit import (
    PASSWORD,
    activate_totp,
    links_in_last_mail,
    login,
    make_user,
    totp_code,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    # Rate-limit counters and used-TOTP markers live in the cache; each test starts clean.
    cache.clear()
    # One step of clock tolerance so that a code computed just before a 30 s boundary still
    # verifies just after it; replay protection does not depend on it.
    settings.MFA_TOTP_TOLERANCE = 1
    # Argon2 is deliberately slow; these tests check flows, not hashing (one test below does).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield
    cache.clear()


def audit_count(action: str, **filters) -> int:
    return AuditEvent.objects.filter(action=action, **filters).count()


def is_signed_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- sign-up, verification, login -----------------------------------------------------------

def test_passwords_are_stored_with_argon2(settings):
    from nexow_site import settings as project_settings

    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS  # undo the fast test hasher
    user = make_user()
    assert user.password.startswith("argon2$argon2id$")


def test_sign_up_sends_a_verification_mail_whose_link_confirms_and_signs_in(client):
    response = client.post("/accounts/signup/", {
        "email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD,
    })
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert not is_signed_in(client)  # mandatory verification: not before the link is used
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new@example.com"]
    assert mail.outbox[0].subject == "[Nexow] Please Confirm Your Email Address"
    assert mail.outbox[0].body.startswith("Hello from Nexow,")
    (link,) = [u for u in links_in_last_mail() if "/accounts/confirm-email/" in u]

    path = re.sub(r"^https?://[^/]+", "", link)
    assert client.get(path).status_code == 200  # the confirmation page, with a POST button
    response = client.post(path)

    assert response.status_code == 302
    user = User.objects.get(email="new@example.com")
    assert user.emailaddress_set.get().verified is True
    assert client.session["_auth_user_id"] == str(user.pk)
    assert audit_count(auth_events.SIGNED_UP, actor=user) == 1
    assert audit_count(auth_events.EMAIL_CONFIRMED, actor=user) == 1
    assert audit_count(auth_events.LOGIN, actor=user) == 1


def test_the_operator_can_close_sign_up(client, settings):
    settings.NEXOW_SIGNUP_OPEN = False
    response = client.get("/accounts/signup/")
    assert "Sign Up Closed" in response.content.decode()
    client.post("/accounts/signup/", {"email": "new@example.com", "password1": PASSWORD,
                                      "password2": PASSWORD})
    assert not User.objects.exists()


def test_sign_up_form_shows_errors_next_to_the_fields(client):
    response = client.post("/accounts/signup/", {
        "email": "not-an-address", "password1": "short", "password2": "other",
    })
    assert response.status_code == 200
    body = response.content.decode()
    assert '<label for="id_email">' in body
    assert "Enter a valid email address." in body
    assert not User.objects.exists()


def test_login_with_an_unverified_address_resends_verification_instead_of_signing_in(client):
    make_user("late@example.com", verified=False)
    response = login(client, "late@example.com")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert not is_signed_in(client)
    assert "confirm-email" in mail.outbox[-1].body


def test_login_and_logout_each_leave_exactly_one_audit_entry_on_the_platform_chain(client):
    user = make_user()
    response = login(client, user.email)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert is_signed_in(client)
    assert client.post("/accounts/logout/").status_code == 302
    assert not is_signed_in(client)

    (entry,) = AuditEvent.objects.filter(action=auth_events.LOGIN)
    assert (entry.actor_id, entry.organization_id, entry.chain) == (user.pk, None, "platform")
    assert entry.ip_address == "127.0.0.1"
    assert audit_count(auth_events.LOGOUT, actor=user) == 1


def test_auth_events_of_a_member_do_not_enter_their_organisations_log(client):
    user = make_user()
    org = organization_create(name="Acme", actor=user)
    login(client, user.email)
    assert AuditEvent.objects.filter(organization=org, action__startswith="auth.").count() == 0


def test_a_wrong_password_is_refused_and_audited_once_with_the_attempted_address(client):
    make_user()
    response = login(client, "ann@example.com", "wrong password")
    assert response.status_code == 200
    assert "The email address and/or password you specified are not correct." in (
        response.content.decode())
    assert not is_signed_in(client)
    (entry,) = AuditEvent.objects.filter(action=auth_events.LOGIN_FAILED)
    assert entry.actor_id is None
    assert entry.metadata == {"email": "ann@example.com"}


def test_the_sixth_failed_login_for_an_address_within_five_minutes_gets_429(client):
    # ACCOUNT_RATE_LIMITS["login_failed"] = "10/m/ip,5/5m/key": five failures per address per
    # five minutes, so attempt six is refused before the password is even checked.
    make_user()
    for _ in range(5):
        assert login(client, "ann@example.com", "wrong password").status_code == 200
    response = login(client, "ann@example.com", PASSWORD)  # even the right password
    assert response.status_code == 429
    assert response["Retry-After"] == "300"
    assert "Too many failed login attempts" in response.content.decode()
    assert not is_signed_in(client)
    # Throttled attempts are not password checks: five failures audited, not six.
    assert audit_count(auth_events.LOGIN_FAILED) == 5


def test_failed_logins_from_one_address_are_throttled_across_accounts(client):
    # "10/m/ip": ten failures from one IP per minute whatever the e-mail tried.
    for i in range(10):
        assert login(client, f"nobody{i}@example.com", "wrong").status_code == 200
    assert login(client, "someone-else@example.com", "wrong").status_code == 429


# --- password reset and change --------------------------------------------------------------

def test_password_reset_by_email_link_sets_a_new_password(client):
    user = make_user()
    response = client.post("/accounts/password/reset/", {"email": user.email})
    assert response.status_code == 302
    assert mail.outbox[-1].to == [user.email]
    (link,) = [u for u in links_in_last_mail() if "/accounts/password/reset/key/" in u]
    path = re.sub(r"^https?://[^/]+", "", link)

    response = client.get(path)  # allauth moves the key from the URL into the session
    assert response.status_code == 302
    form_url = response["Location"]
    new_password = "an entirely new passphrase 7"
    response = client.post(form_url, {"password1": new_password, "password2": new_password})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/reset/key/done/"

    user.refresh_from_db()
    assert user.check_password(new_password)
    assert not user.check_password(PASSWORD)
    assert audit_count(auth_events.PASSWORD_RESET, actor=user) == 1
    # The link works once.
    assert "Bad Token" in client.get(path, follow=True).content.decode()


def test_password_change_is_audited_once(client):
    user = make_user()
    client.force_login(user)
    new_password = "another long passphrase 9"
    response = client.post("/accounts/password/change/", {
        "oldpassword": PASSWORD, "password1": new_password, "password2": new_password,
    })
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new_password)
    assert audit_count(auth_events.PASSWORD_CHANGED, actor=user) == 1


# --- two-factor authentication --------------------------------------------------------------

def reauthenticate(client, password: str = PASSWORD, next_url: str = ""):
    url = "/accounts/reauthenticate/" + (f"?next={next_url}" if next_url else "")
    return client.post(url, {"password": password})


def test_activating_totp_needs_reauthentication_then_a_valid_code(
        client, django_capture_on_commit_callbacks):
    user = make_user()
    login(client, user.email)
    response = client.get("/accounts/2fa/totp/activate/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauthenticate/")

    assert reauthenticate(client).status_code == 302
    assert audit_count(auth_events.REAUTHENTICATED, actor=user) == 1
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = client.session["mfa.totp.secret"]
    assert secret in page.content.decode()  # shown for manual entry next to the QR code

    bad = client.post("/accounts/2fa/totp/activate/", {"code": "000000"
                      if totp_code(secret) != "000000" else "111111"})
    assert bad.status_code == 200
    assert "Incorrect code." in bad.content.decode()
    assert not Authenticator.objects.filter(user=user).exists()

    # allauth announces the new authenticator when the transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret)})
    assert response.status_code == 302
    types = set(Authenticator.objects.filter(user=user).values_list("type", flat=True))
    assert types == {Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES}
    # One change for the person (TOTP plus its first recovery codes): one entry.
    assert audit_count(auth_events.MFA_ACTIVATED, actor=user) == 1
    assert audit_count(auth_events.RECOVERY_CODES_GENERATED, actor=user) == 0


def test_login_with_totp_asks_for_the_code_after_the_password(client):
    user = make_user()
    secret = activate_totp(user)
    response = login(client, user.email)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert not is_signed_in(client)  # the password alone is not enough

    response = client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret)})
    assert response.status_code == 302
    assert is_signed_in(client)
    assert audit_count(auth_events.LOGIN, actor=user) == 1


def test_a_wrong_totp_code_is_refused_and_audited(client):
    user = make_user()
    secret = activate_totp(user)
    login(client, user.email)
    good = totp_code(secret)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    response = client.post("/accounts/2fa/authenticate/", {"code": wrong})
    assert response.status_code == 200
    assert "Incorrect code." in response.content.decode()
    assert not is_signed_in(client)
    assert audit_count(auth_events.MFA_FAILED, actor=user) == 1


def test_a_totp_code_cannot_be_replayed_within_its_window(client):
    user = make_user()
    secret = activate_totp(user)
    code = totp_code(secret)
    login(client, user.email)
    assert client.post("/accounts/2fa/authenticate/", {"code": code}).status_code == 302
    assert is_signed_in(client)
    client.post("/accounts/logout/")

    # Someone who watched the code being typed tries it a moment later, still in the window.
    login(client, user.email)
    response = client.post("/accounts/2fa/authenticate/", {"code": code})
    assert response.status_code == 200
    assert "Incorrect code." in response.content.decode()
    assert not is_signed_in(client)


def test_each_recovery_code_signs_in_once(client):
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

    user = make_user()
    activate_totp(user)
    codes = RecoveryCodes.activate(user).get_unused_codes()
    assert len(codes) == 10

    login(client, user.email)
    assert client.post("/accounts/2fa/authenticate/", {"code": codes[0]}).status_code == 302
    assert is_signed_in(client)
    client.post("/accounts/logout/")

    login(client, user.email)
    response = client.post("/accounts/2fa/authenticate/", {"code": codes[0]})
    assert response.status_code == 200
    assert not is_signed_in(client)
    # Another, unused code still works.
    assert client.post("/accounts/2fa/authenticate/", {"code": codes[1]}).status_code == 302
    assert is_signed_in(client)


def test_regenerating_recovery_codes_and_deactivating_totp_are_audited_once_each(
        client, django_capture_on_commit_callbacks):
    user = make_user()
    activate_totp(user)
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

    RecoveryCodes.activate(user)
    client.force_login(user)
    reauthenticate(client)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/2fa/recovery-codes/generate/")
    assert response.status_code == 302
    assert audit_count(auth_events.RECOVERY_CODES_GENERATED, actor=user) == 1

    response = client.post("/accounts/2fa/totp/deactivate/")
    assert response.status_code == 302
    assert not Authenticator.objects.filter(user=user).exists()
    # TOTP and its now useless recovery codes go together: one entry.
    assert audit_count(auth_events.MFA_DEACTIVATED, actor=user) == 1


def test_reauthentication_by_totp_code_is_audited(client):
    user = make_user()
    secret = activate_totp(user)
    client.force_login(user)
    response = client.post("/accounts/2fa/reauthenticate/", {"code": totp_code(secret)})
    assert response.status_code == 302
    (entry,) = AuditEvent.objects.filter(action=auth_events.REAUTHENTICATED)
    assert entry.metadata == {"method": "mfa"}


# --- single sign-on ---------------------------------------------------------------------------

def test_login_page_offers_the_configured_sso_provider(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": [{
        "provider_id": "corp", "name": "Corp SSO", "client_id": "nexow",
        "secret": "s3cret", "settings": {"server_url": "https://id.example.com"},
    }]}}
    body = client.get("/accounts/login/").content.decode()
    assert "Sign in with Corp SSO" in body
    assert 'href="/accounts/oidc/corp/login/?process=login"' in body


def test_login_page_has_no_sso_button_without_a_provider(client):
    body = client.get("/accounts/login/").content.decode()
    assert "Sign in with" not in body
    assert '<label for="id_login">' in body


def test_oidc_environment_variables_register_the_provider(tmp_path):
    """A fresh process (settings are read once at start-up) with the OIDC_* variables set."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="nexow_site.settings",
               NEXOW_VAR_DIR=str(tmp_path),
               OIDC_PROVIDER_ID="corp", OIDC_NAME="Corp SSO", OIDC_CLIENT_ID="nexow-portal",
               OIDC_CLIENT_SECRET="s3cret", OIDC_SERVER_URL="https://id.example.com")
    script = (
        "import django; django.setup()\n"
        "from allauth.socialaccount.adapter import _build_apps_from_settings\n"
        "from allauth.socialaccount import providers\n"
        "apps = _build_apps_from_settings()['openid_connect']\n"
        "app = apps[0]\n"
        "cls = providers.registry.get_class('openid_connect')\n"
        "print(len(apps), app.provider_id, app.name, app.client_id,"
        " app.settings['server_url'], cls.id)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "corp", "Corp", "SSO", "nexow-portal",
                                  "https://id.example.com", "openid_connect"]


def test_time_based_codes_match_rfc6238_test_vector():
    # RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 with 8 digits → 287082 with six.
    import base64

    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp_code(secret, at=59) == "287082"


# --- layout ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/signup/",
                                  "/accounts/password/reset/", "/accounts/confirm-email/"])
def test_sign_in_pages_are_drawn_in_the_site_layout(client, path):
    body = client.get(path).content.decode()
    assert '<link rel="stylesheet" href="/static/nexow/site.css">' in body
    assert '<a class="brand" href="/">Nexow</a>' in body
    assert '<main class="page narrow">' in body
    assert "<script" not in body  # the content security policy allows no inline script


def test_account_security_pages_share_the_settings_menu(client):
    client.force_login(make_user())
    body = client.get("/accounts/2fa/").content.decode()
    assert '<nav class="panel tabs" aria-label="Account settings">' in body
    assert "Authenticator App" in body
    assert '<span class="user-email">ann@example.com</span>' in body
