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


# The credential that names the account (a key id or login), in order of preference. Its last
# four characters tell two keys apart, as exchanges show them; no character of a secret is ever
# shown, however long it is.
IDENTIFYING_FIELDS = ("api_key", "apiKey", "key", "username", "login", "sender_comp_id")


def credentials_hint(credentials: dict[str, Any]) -> str:
    """The last four characters of the identifying credential, for the masked ``••••1234``;
    empty when only secrets were given."""
    for name in IDENTIFYING_FIELDS:
        value = str(credentials.get(name) or "")
        if len(value) >= 8:  # a shorter one would be mostly shown by its last four
            return value[-4:]
    return ""
