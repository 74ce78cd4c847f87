"""``manage.py seed_demo``: the demo organisation and its printed login, created once."""

from __future__ import annotations

import json
import stat

import pytest
from django.core.cache import cache
from django.core.management import call_command

from accounts.models import AuditEvent, Membership, Organization, User
from tests.accounts.authkit import login
from trading.models import BrokerAccount, Deployment

pytestmark = pytest.mark.django_db


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    return tmp_path


def test_seed_demo_creates_demo_fund_with_an_owner_who_can_sign_in(var_dir, client):
    call_command("seed_demo", verbosity=0)

    login_file = var_dir / "demo-login.json"
    assert stat.S_IMODE(login_file.stat().st_mode) == 0o600
    credentials = json.loads(login_file.read_text())
    assert set(credentials) == {"email", "password", "organization"}
    assert credentials["email"] == "demo@nexow.localhost"
    assert credentials["organization"] == "demo"
    assert len(credentials["password"]) >= 20  # token_urlsafe(18): 24 characters, 144 bits

    org = Organization.objects.get()
    assert (org.name, org.slug) == ("Demo Fund", "demo")
    roles = dict(Membership.objects.filter(organization=org)
                 .values_list("user__email", "role"))
    assert roles == {
        "demo@nexow.localhost": "owner", "admin@nexow.localhost": "admin",
        "trader@nexow.localhost": "trader", "analyst@nexow.localhost": "analyst",
        "compliance@nexow.localhost": "compliance", "viewer@nexow.localhost": "viewer",
    }
    owner = User.objects.get(email="demo@nexow.localhost")
    assert owner.emailaddress_set.get().verified
    # The other demo members cannot be signed in as.
    assert not User.objects.get(email="viewer@nexow.localhost").has_usable_password()

    response = login(client, credentials["email"], credentials["password"])
    assert response.status_code == 302
    assert client.get("/")["Location"] == "/orgs/demo/dashboard/"


def test_seed_demo_twice_changes_nothing(var_dir):
    call_command("seed_demo", verbosity=0)
    login_file = var_dir / "demo-login.json"
    first = login_file.read_text()
    counts = (User.objects.count(), Membership.objects.count(), AuditEvent.objects.count(),
              BrokerAccount.objects.count(), Deployment.objects.count())
    assert counts[3:] == (1, 1)  # the demo's paper account and its running deployment

    call_command("seed_demo", verbosity=0)

    assert login_file.read_text() == first
    assert (User.objects.count(), Membership.objects.count(), AuditEvent.objects.count(),
            BrokerAccount.objects.count(), Deployment.objects.count()) == counts
    assert Organization.objects.count() == 1


def test_seed_demo_leaves_an_existing_installation_alone(var_dir):
    from accounts.services import organization_create

    organization_create(name="Real Fund", actor=User.objects.create_user("cfo@example.com"))
    call_command("seed_demo", verbosity=0)
    assert not (var_dir / "demo-login.json").exists()
    assert not User.objects.filter(email="demo@nexow.localhost").exists()
