"""Helpers shared by the authentication, portal and console tests: users with verified e-mail,
signing in through the real allauth pages, and TOTP codes computed with allauth's own helpers."""

from __future__ import annotations

import re
import time

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value
from allauth.mfa.utils import decrypt
from django.core import mail
from django.test import Client

from accounts.models import User

PASSWORD = "correct horse battery staple 42"


def make_user(email: str = "ann@example.com", password: str = PASSWORD, *, verified: bool = True,
              **extra) -> User:
    user = User.objects.create_user(email=email, password=password, **extra)
    EmailAddress.objects.create(user=user, email=email, verified=verified, primary=True)
    return user


def login(client: Client, email: str, password: str = PASSWORD, **extra):
    return client.post("/accounts/login/", {"login": email, "password": password, **extra})


def totp_code(secret: str, *, at: float | None = None, period: int = 30) -> str:
    return format_hotp_value(hotp_value(secret, int((at or time.time()) // period)))


def activate_totp(user: User) -> str:
    """Gives ``user`` a TOTP authenticator and returns its secret (no web flow)."""
    from allauth.mfa.totp.internal.auth import generate_totp_secret

    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def totp_secret_of(user: User) -> str:
    auth = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    return decrypt(auth.data["secret"])


def links_in_last_mail() -> list[str]:
    return re.findall(r"https?://\S+", mail.outbox[-1].body)
