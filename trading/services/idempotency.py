"""``Idempotency-Key`` handling with Stripe's semantics.

The first request with a key inserts an `IdempotencyKey` row (committed at once, "in flight"),
does its work and stores its response on the row. A later request with the same key and the same
body gets that response again (``replayed``); with another body it is refused with 422; while the
first is still in flight it is refused with 409. The (organisation, key) unique constraint is what
makes N concurrent identical requests do the work exactly once. A row left in flight by a crashed
request is taken over after `IN_FLIGHT_TIMEOUT` seconds; a request that fails with a domain error
releases its key so the client can correct and retry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Organization
from nexow_site.errors import ApplicationError, Conflict
from trading.models import IdempotencyKey

IN_FLIGHT_TIMEOUT = 60
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    replayed: bool


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    canonical = json.dumps({"method": method, "path": path, "body": body}, sort_keys=True,
                           default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _claim(organization: Organization, key: str, scope: str, request_hash: str
           ) -> IdempotencyKey | StoredResponse:
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(organization=organization, key=key, scope=scope,
                                                 request_hash=request_hash)
    except IntegrityError:
        pass
    with transaction.atomic():
        row = IdempotencyKey.objects.select_for_update().get(organization=organization, key=key)
        if row.request_hash != request_hash or row.scope != scope:
            raise ApplicationError(
                "This Idempotency-Key was already used with a different request.",
                code="idempotency_key_reused", status_code=422,
                fields={"Idempotency-Key": ["Use a new key for a different request."]})
        if row.completed_at is not None:
            return StoredResponse(row.response_status or 200, row.response_body, True)
        if row.created_at > timezone.now() - timedelta(seconds=IN_FLIGHT_TIMEOUT):
            raise Conflict("A request with this Idempotency-Key is still being processed; "
                           "retry shortly.", code="idempotency_in_flight",
                           headers={"Retry-After": "1"})
        # The first request died before answering: this one takes the key over.
        row.created_at = timezone.now()
        row.save(update_fields=["created_at"])
        return row


def idempotent_call(*, organization: Organization, key: str, scope: str, request_hash: str,
                    work: Callable[[], tuple[int, Any]]) -> StoredResponse:
    """Run `work` (returning (status, JSON body)) at most once per (organisation, key)."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ApplicationError("Idempotency-Key must be 1 to 255 characters.",
                               fields={"Idempotency-Key": ["1 to 255 characters."]})
    claimed = _claim(organization, key, scope, request_hash)
    if isinstance(claimed, StoredResponse):
        return claimed
    try:
        # The work and the stored response commit together: no crash can leave an object
        # created without its key knowing about it.
        with transaction.atomic():
            status, body = work()
            IdempotencyKey.objects.filter(pk=claimed.pk).update(
                response_status=status, response_body=body, completed_at=timezone.now())
    except BaseException:
        IdempotencyKey.objects.filter(pk=claimed.pk, completed_at__isnull=True).delete()
        raise
    return StoredResponse(status, body, False)
