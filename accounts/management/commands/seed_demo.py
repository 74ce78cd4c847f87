"""``manage.py seed_demo``: a demo organisation for a fresh install, and its login.

When the database holds no organisation yet, it creates "Demo Fund" (slug ``demo``) with an owner,
``demo@nexow.localhost``, whose password is random and whose e-mail address is verified, plus a
few members of the other roles (their passwords are unusable: they are there to be seen, not to
sign in as). The owner's login is written to ``VAR_DIR/demo-login.json`` (mode 600), which
``nexow start`` prints. A second run changes nothing.

Each part of the demo is one function (`seed_accounts`, then the data of the other apps), called
in order by `seed_demo`; a later part receives the `DemoAccounts` of the first.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import selectors, services
from accounts.models import Organization, User
from accounts.permissions import Role

DEMO_ORGANIZATION_NAME = "Demo Fund"
DEMO_ORGANIZATION_SLUG = "demo"
DEMO_OWNER_EMAIL = "demo@nexow.localhost"
DEMO_MEMBERS: tuple[tuple[str, str], ...] = (
    ("admin@nexow.localhost", Role.ADMIN),
    ("trader@nexow.localhost", Role.TRADER),
    ("analyst@nexow.localhost", Role.ANALYST),
    ("compliance@nexow.localhost", Role.COMPLIANCE),
    ("viewer@nexow.localhost", Role.VIEWER),
)
LOGIN_FILE_NAME = "demo-login.json"


@dataclass(frozen=True)
class DemoAccounts:
    organization: Organization
    owner: User
    password: str

    def login(self) -> dict[str, str]:
        return {"email": self.owner.email, "password": self.password,
                "organization": self.organization.slug}


def _verified_user(email: str, password: str | None) -> User:
    user = User.objects.create_user(email=email, password=password)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


def seed_accounts() -> DemoAccounts | None:
    """The demo organisation, its owner and members; None when any organisation exists."""
    if Organization.objects.exists():
        return None
    password = secrets.token_urlsafe(18)
    with transaction.atomic():
        owner = _verified_user(DEMO_OWNER_EMAIL, password)
        organization = services.organization_create(
            name=DEMO_ORGANIZATION_NAME, slug=DEMO_ORGANIZATION_SLUG, actor=owner
        )
        caller = selectors.caller_for(user=owner, organization=organization)
        for email, role in DEMO_MEMBERS:
            # Through invitations, as a real team joins: the audit log shows who joined how.
            member = _verified_user(email, None)
            _invitation, token = services.invitation_create(
                organization=organization, email=email, role=role, caller=caller
            )
            services.invitation_accept(token=token, user=member)
    return DemoAccounts(organization=organization, owner=owner, password=password)


def write_login_file(path: Path, login: dict[str, str]) -> None:
    """Writes the demo login readable by its owner only (it holds a password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(login, fh, indent=2)
        fh.write("\n")
    os.chmod(path, 0o600)  # an existing file keeps its old mode through os.open


def seed_demo() -> DemoAccounts | None:
    accounts = seed_accounts()
    if accounts is None:
        return None
    from trading.demo import seed_trading

    seed_trading(organization=accounts.organization, actor=accounts.owner)
    write_login_file(Path(settings.VAR_DIR) / LOGIN_FILE_NAME, accounts.login())
    return accounts


class Command(BaseCommand):
    help = "Create the demo organisation and its login when the database has no organisation."

    def handle(self, *args, **options) -> None:
        accounts = seed_demo()
        if options["verbosity"] < 1:
            return
        if accounts is None:
            self.stdout.write("An organisation exists already; nothing seeded.")
            return
        self.stdout.write(self.style.SUCCESS(
            f"Seeded {accounts.organization.name} ({accounts.organization.slug}); login "
            f"{accounts.owner.email}, written to {Path(settings.VAR_DIR) / LOGIN_FILE_NAME}"
        ))
