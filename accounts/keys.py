"""API key format, hashing and authentication.

A key reads ``nx_live_<36 base62 chars of randomness><6 base62 chars of CRC32>``: 36 × log2(62) ≈
214 bits of randomness, of which the first 8 characters are stored in clear as the visible prefix
(the rest, ≈ 166 bits, never is). The checksum lets a secret scanner tell a real key from noise
without asking us, and lets us reject a mistyped key without a database query.

Only ``HMAC-SHA256(key derived from SECRET_KEY, key)`` is stored. A key is found with one indexed
equality lookup on that hash; no password-hashing work is needed because the secret already has
far more entropy than any guess could cover. Keys are never cached: a revoke takes effect on the
very next request.
"""

from __future__ import annotations

import re
import secrets
import string
import zlib
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.crypto import salted_hmac

if TYPE_CHECKING:
    from accounts.models import ApiKey, User

KEY_PREFIX = "nx_live_"
RANDOM_LENGTH = 36
CHECKSUM_LENGTH = 6
VISIBLE_RANDOM_CHARS = 8
BASE62 = string.digits + string.ascii_letters
_BODY_LENGTH = RANDOM_LENGTH + CHECKSUM_LENGTH
KEY_PATTERN = re.compile(rf"nx_(?:live|test)_[0-9A-Za-z]{{{_BODY_LENGTH}}}")
_EXACT_KEY = re.compile(rf"^nx_live_[0-9A-Za-z]{{{_BODY_LENGTH}}}$")
_HASH_SALT = "nexow.accounts.api-key"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        digits.append(BASE62[rem])
    return "".join(reversed(digits))


def checksum(random_part: str) -> str:
    # CRC32 < 62**6, so six base62 digits always hold it.
    return _base62(zlib.crc32(random_part.encode()), CHECKSUM_LENGTH)


def generate_key() -> str:
    random_part = "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    return f"{KEY_PREFIX}{random_part}{checksum(random_part)}"


def is_well_formed(key: str) -> bool:
    """Shape and checksum are right; says nothing about whether the key exists."""
    if not _EXACT_KEY.match(key):
        return False
    body = key[len(KEY_PREFIX):]
    return checksum(body[:RANDOM_LENGTH]) == body[RANDOM_LENGTH:]


def visible_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + VISIBLE_RANDOM_CHARS]


def hash_key(key: str, *, secret: str | None = None) -> str:
    return salted_hmac(_HASH_SALT, key, secret=secret, algorithm="sha256").hexdigest()


def _candidate_hashes(key: str) -> list[str]:
    # SECRET_KEY_FALLBACKS keep keys working through a secret rotation; still one query (IN).
    secrets_in_use = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [hash_key(key, secret=s) for s in secrets_in_use]


class KeyRejected(Exception):
    """Why a presented key was refused: a reason for the audit log and an organisation (if the
    key was ours) — never the key itself."""

    def __init__(self, reason: str, key: ApiKey | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.key = key


def resolve_key(raw: str) -> tuple[User, ApiKey]:
    """The (creator, key) a plaintext key stands for, or `KeyRejected`."""
    from accounts.models import ApiKey, Membership

    if not is_well_formed(raw):
        raise KeyRejected("malformed")
    # One indexed query: the key by hash, its creator and organisation, and whether the creator
    # is still a member.
    key = (
        ApiKey.objects.select_related("created_by", "organization")
        .annotate(creator_is_member=Exists(Membership.objects.filter(
            user=OuterRef("created_by"), organization=OuterRef("organization"))))
        .filter(hashed_key__in=_candidate_hashes(raw))
        .first()
    )
    if key is None:
        raise KeyRejected("unknown")
    now = timezone.now()
    if key.revoked_at is not None:
        raise KeyRejected("revoked", key)
    if key.expires_at <= now:
        raise KeyRejected("expired", key)
    user = key.created_by
    if not user.is_active or key.organization.deleted_at is not None:
        raise KeyRejected("owner_inactive", key)
    # A key acts as its creator's membership: once the creator has left, the key is dead.
    if not key.creator_is_member:
        raise KeyRejected("creator_not_member", key)
    touch_last_used(key, now)
    return user, key


def touch_last_used(key: ApiKey, now) -> None:
    """At most one write per key per minute, not one per request."""
    from accounts.models import ApiKey

    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def record_rejection(rejected: KeyRejected, request=None) -> None:
    from accounts.audit import audit_record

    key = rejected.key
    audit_record(
        organization=key.organization if key is not None else None,
        actor=None,
        action="api_key.auth_failed",
        target=key,
        request=request,
        metadata={"reason": rejected.reason},
    )


def parse_bearer(header_value: str) -> str | None:
    scheme, _, credentials = (header_value or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip()


def authenticate_key_header(header_value: str):
    """(user, key) for an ``Authorization: Bearer nx_live_…`` header, or None. Used by the
    WebSocket middleware; a refused key is audited like on the HTTP API."""
    raw = parse_bearer(header_value)
    if not raw:
        return None
    try:
        return resolve_key(raw)
    except KeyRejected as rejected:
        record_rejection(rejected)
        return None
