"""Reads of accounts data, always scoped by organisation, and the resolution of a caller (a
member, or an API key acting as its creator's membership) into a `Caller` with effective scopes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organization, User
from accounts.permissions import expand_scopes, scopes_for_role


@dataclass(frozen=True)
class Caller:
    """Who is acting inside one organisation and with which scopes.

    For a key, the scopes are the key's scopes intersected with its creator's *current* role, so
    demoting the creator narrows every key they made, immediately.
    """

    user: User
    organization: Organization
    membership: Membership
    api_key: ApiKey | None
    scopes: frozenset[str]

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def role(self) -> str:
        return self.membership.role


def effective_key_scopes(key: ApiKey, membership: Membership) -> frozenset[str]:
    return expand_scopes(key.scopes) & scopes_for_role(membership.role)


def caller_for(*, user: User, organization: Organization, api_key: ApiKey | None = None
               ) -> Caller | None:
    """The caller's standing in ``organization``, or None when they have none there (a key of
    another organisation, or a non-member) — which the API reports as 404."""
    if api_key is not None and api_key.organization_id != organization.pk:
        return None
    membership = (
        Membership.objects.select_related("user").filter(user=user, organization=organization)
        .first()
    )
    if membership is None:
        return None
    scopes = scopes_for_role(membership.role)
    if api_key is not None:
        scopes = effective_key_scopes(api_key, membership)
    return Caller(user=user, organization=organization, membership=membership, api_key=api_key,
                  scopes=scopes)


def organization_get_active(*, slug: str) -> Organization | None:
    return Organization.active.filter(slug=slug).first()


def organization_list_for_user(*, user: User, api_key: ApiKey | None = None
                               ) -> QuerySet[Organization]:
    qs = Organization.active.filter(memberships__user=user)
    if api_key is not None:
        qs = qs.filter(pk=api_key.organization_id)
    return qs.order_by("name", "id")


def membership_list(*, organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(organization=organization).select_related("user")


def owner_count(*, organization: Organization) -> int:
    return Membership.objects.filter(organization=organization, role="owner").count()


def invitation_list(*, organization: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(organization=organization).select_related("invited_by")


def api_key_list(*, organization: Organization, caller: Caller | None = None
                 ) -> QuerySet[ApiKey]:
    """All keys of the organisation for ``keys:admin``; otherwise the caller's own keys."""
    qs = ApiKey.objects.filter(organization=organization).select_related("created_by")
    if caller is not None and not caller.has_scope("keys:admin"):
        qs = qs.filter(created_by=caller.user)
    return qs


def audit_event_list(
    *,
    organization: Organization,
    action: str | None = None,
    actor_id: int | None = None,
    target_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    return audit_event_filter(
        AuditEvent.objects.filter(organization=organization), action=action, actor_id=actor_id,
        target_type=target_type, since=since, until=until,
    )


def audit_event_filter(
    qs: QuerySet[AuditEvent],
    *,
    action: str | None = None,
    actor_id: int | None = None,
    target_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """Narrow an already organisation-scoped audit queryset by the API's filters."""
    if action:
        # "member" matches member.role_changed, member.removed, ...
        qs = qs.filter(action__startswith=action)
    if actor_id is not None:
        qs = qs.filter(actor_id=actor_id)
    if target_type:
        qs = qs.filter(target_type=target_type)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    return qs.order_by("-created_at", "-id")
