"""The audit log: one service to append (`audit_record`) and one to check (`verify_chain`).

Every app records through `audit_record`. Entries form one hash chain per organisation (and a
``platform`` chain for events without one): each stores ``sha256(prev_hash + canonical JSON of its
fields)``. Appends to a chain are serialised by locking its `AuditChain` head row, so concurrent
writers cannot fork it; `verify_chain` recomputes every link and reports the first broken one,
which catches a row edited or removed behind the application's back.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from accounts.models import AuditChain, AuditEvent, Organization, User

PLATFORM_CHAIN = "platform"
_HASHED_FIELDS = (
    "chain", "sequence", "organization_id", "actor_id", "actor_label", "action", "target_type",
    "target_id", "target_label", "ip_address", "user_agent", "request_id", "metadata",
    "created_at", "prev_hash",
)


def chain_name(organization: Organization | None) -> str:
    return f"org:{organization.pk}" if organization is not None else PLATFORM_CHAIN


def _canonical(value: Any) -> Any:
    """JSON-safe, stable form: what is stored is exactly what is hashed."""
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def compute_entry_hash(fields: dict[str, Any]) -> str:
    created_at = fields["created_at"]
    payload = {name: fields[name] for name in _HASHED_FIELDS if name != "prev_hash"}
    payload["created_at"] = created_at.astimezone(UTC).isoformat(timespec="microseconds")
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((fields["prev_hash"] + body).encode()).hexdigest()


def _entry_fields(event: AuditEvent) -> dict[str, Any]:
    fields = {name: getattr(event, name) for name in _HASHED_FIELDS}
    fields["ip_address"] = _normal_ip(fields["ip_address"])
    return fields


def _normal_ip(value: Any) -> str | None:
    # The database may hand an address back in another spelling (or as an ipaddress object);
    # hashing the normal form keeps the chain stable across backends.
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        return None


def _client_ip(request) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is caller-controlled unless a trusted proxy rewrites it,
    # and the deployment's proxy sets REMOTE_ADDR correctly.
    return _normal_ip(request.META.get("REMOTE_ADDR")) if request is not None else None


def _request_id(request, context_id: str) -> str:
    rid = getattr(request, "request_id", None) if request is not None else None
    rid = rid or (context_id if context_id != "-" else "")
    return rid[:64]


def _actor_label(actor: User | None, request) -> str:
    key = getattr(request, "auth", None) if request is not None else None
    prefix = getattr(key, "prefix", None)
    if actor is not None and prefix:
        return f"{actor.email} (key {prefix})"
    return actor.email if actor is not None else ""


def audit_record(
    *,
    organization: Organization | None,
    actor: User | None,
    action: str,
    target: models.Model | None = None,
    request=None,
    metadata: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one entry to the organisation's chain (or the platform chain when None).

    Runs inside the caller's transaction when there is one, so an action and its audit entry
    commit or roll back together.
    """
    from nexow_site.observability import request_id_var

    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    name = chain_name(organization)
    # No savepoint of its own: the entry and the caller's change must fail together anyway,
    # and a savepoint costs two round trips on every state change.
    with transaction.atomic(savepoint=False):
        head = AuditChain.objects.select_for_update().filter(name=name).first()
        if head is None:  # the chain's first entry
            head, _ = AuditChain.objects.get_or_create(name=name)
            head = AuditChain.objects.select_for_update().get(pk=head.pk)
        user_agent = request.META.get("HTTP_USER_AGENT", "")[:512] if request is not None else ""
        fields: dict[str, Any] = {
            "chain": name,
            "sequence": head.length + 1,
            "organization_id": organization.pk if organization is not None else None,
            "actor_id": actor.pk if actor is not None else None,
            "actor_label": _actor_label(actor, request)[:254],
            "action": action,
            "target_type": target._meta.label_lower if target is not None else "",
            "target_id": str(target.pk) if target is not None else "",
            "target_label": str(target)[:254] if target is not None else "",
            "ip_address": _client_ip(request),
            "user_agent": user_agent,
            "request_id": _request_id(request, request_id_var.get()),
            "metadata": _canonical(metadata or {}),
            "created_at": timezone.now(),
            "prev_hash": head.head_hash,
        }
        fields["entry_hash"] = compute_entry_hash(fields)
        event = AuditEvent(**fields)
        event.save()
        AuditChain.objects.filter(pk=head.pk).update(
            length=fields["sequence"], head_hash=fields["entry_hash"]
        )
    return event


@dataclass(frozen=True)
class ChainReport:
    chain: str
    intact: bool
    checked: int
    broken_id: int | None = None
    expected: str | None = None
    found: str | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain, "intact": self.intact, "checked": self.checked,
            "broken_link": None if self.intact else {
                "id": self.broken_id, "expected": self.expected, "found": self.found,
                "reason": self.reason,
            },
        }


def _iter_chain(name: str) -> Iterator[AuditEvent]:
    return AuditEvent.objects.filter(chain=name).order_by("sequence").iterator(chunk_size=2000)


def verify_chain(organization: Organization | None = None, *, chain: str | None = None
                 ) -> ChainReport:
    """Recompute the chain of ``organization`` (the platform chain when None) and report the
    first broken link: a row whose stored hash is not what its fields give, a row that does not
    point at its predecessor, a gap in the sequence, or a head that does not match the last row."""
    name = chain or chain_name(organization)
    prev_hash, expected_seq, checked, last_id = "", 1, 0, None
    for event in _iter_chain(name):
        if event.sequence != expected_seq:
            return ChainReport(name, False, checked, event.pk, f"sequence {expected_seq}",
                               f"sequence {event.sequence}", "entries are missing before this one")
        if event.prev_hash != prev_hash:
            return ChainReport(name, False, checked, event.pk, prev_hash, event.prev_hash,
                               "does not point at the previous entry")
        recomputed = compute_entry_hash(_entry_fields(event))
        if recomputed != event.entry_hash:
            return ChainReport(name, False, checked, event.pk, recomputed, event.entry_hash,
                               "contents changed after it was written")
        prev_hash, expected_seq, checked, last_id = event.entry_hash, expected_seq + 1, checked + 1, \
            event.pk
    head = AuditChain.objects.filter(name=name).first()
    head_length, head_hash = (head.length, head.head_hash) if head else (0, "")
    if head_length != checked or head_hash != prev_hash:
        return ChainReport(name, False, checked, last_id, f"{head_length} entries, head {head_hash}",
                           f"{checked} entries, head {prev_hash}",
                           "entries were removed from the end of the chain")
    return ChainReport(name, True, checked)


def verify_all_chains() -> list[ChainReport]:
    names = set(AuditChain.objects.values_list("name", flat=True))
    names |= set(AuditEvent.objects.values_list("chain", flat=True).distinct())
    return [verify_chain(chain=name) for name in sorted(names)]
