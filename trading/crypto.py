"""Encryption at rest of broker credentials (Fernet: AES-128-CBC with an HMAC-SHA256 tag).

The key is the ``NEXOW_CREDENTIALS_KEY`` setting, read from the environment variable of that name
(a urlsafe base64 32-byte Fernet key, ``Fernet.generate_key()``); settings refuse to start with DEBUG
off and no key, or with a malformed one. With DEBUG on (a laptop, the test suite) settings derive
a development key from SECRET_KEY so nothing needs setting up; production credentials never hang on
a key derived from another secret, and without any key encrypting or decrypting refuses. Several
keys separated by commas rotate: the first encrypts, all decrypt.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ENV_VAR = "NEXOW_CREDENTIALS_KEY"


class CredentialsUnreadable(Exception):
    """The stored token does not decrypt with the configured keys."""


def _keys() -> list[bytes]:
    raw = str(getattr(settings, ENV_VAR, "") or "").strip()
    if not raw:
        raise ImproperlyConfigured(f"{ENV_VAR} is not set: broker credentials cannot be "
                                   "encrypted")
    return [k.strip().encode() for k in raw.split(",") if k.strip()]


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in _keys()])


def encrypt_credentials(credentials: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(credentials, sort_keys=True).encode()).decode("ascii")


def decrypt_credentials(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode("ascii")))
    except InvalidToken:
        raise CredentialsUnreadable("broker credentials do not decrypt with the configured "
                                    "key(s)") from None


def credentials_hint(credentials: dict[str, Any]) -> str:
    """The last four characters of the longest secret value, for the masked ``••••1234``."""
    values = sorted((str(v) for v in credentials.values() if v), key=len)
    return values[-1][-4:] if values else ""
