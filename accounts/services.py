"""Every change to organisations, memberships, invitations and API keys.

Each service is one transaction that checks the relational rules (nobody grants above their own
role or changes their own role; the last owner stays), writes, and appends exactly one audit entry
in the same transaction. E-mail goes out on commit. Scope checks per endpoint happen in the API
base class; the rules here hold whoever calls.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts import keys as key_format
from accounts.audit import audit_record
from accounts.models import ApiKey, Invitation, Membership, Organization, User
from accounts.permissions import (
    Role,
    expand_scopes,
    normalize_scopes,
    role_can_grant,
    scopes_for_role,
)
from accounts.selectors import Caller
from nexow_site.errors import ApplicationError, Conflict, Forbidden, NotFound

KEY_DEFAULT_DAYS = 90
KEY_MAX_DAYS = 366
INVITATION_DAYS = 7


# --- organisations --------------------------------------------------------------------------

def _unique_slug(base: str) -> str:
    base = (slugify(base) or "org")[:50].strip("-") or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def organization_create(*, name: str, actor: User, slug: str | None = None, request=None
                        ) -> Organization:
    """A new organisation with ``actor`` as its owner."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError("An organisation needs a name.", fields={"name": ["Required."]})
    with transaction.atomic():
        if slug:
            if Organization.objects.filter(slug=slug).exists():
                raise Conflict("That slug is taken.", fields={"slug": ["Already in use."]})
        else:
            slug = _unique_slug(name)
        try:
            with transaction.atomic():
                org = Organization.objects.create(name=name, slug=slug)
        except IntegrityError as exc:
            raise Conflict("That slug is taken.", fields={"slug": ["Already in use."]}) from exc
        Membership.objects.create(user=actor, organization=org, role=Role.OWNER)
        audit_record(organization=org, actor=actor, action="organization.created", target=org,
                     request=request, metadata={"name": name, "slug": slug})
    return org


def organization_update(*, organization: Organization, name: str, actor: User, request=None
                        ) -> Organization:
    name = (name or "").strip()
    if not name:
        raise ApplicationError("An organisation needs a name.", fields={"name": ["Required."]})
    with transaction.atomic():
        before = organization.name
        organization.name = name
        organization.save(update_fields=["name"])
        audit_record(organization=organization, actor=actor, action="organization.updated",
                     target=organization, request=request,
                     metadata={"name": {"from": before, "to": name}})
    return organization


def organization_delete(*, organization: Organization, actor: User, request=None) -> None:
    """Soft delete: the organisation disappears from the API and its keys stop working, while its
    records and audit trail are kept."""
    with transaction.atomic():
        organization.deleted_at = timezone.now()
        organization.save(update_fields=["deleted_at"])
        audit_record(organization=organization, actor=actor, action="organization.deleted",
                     target=organization, request=request)


# --- memberships ----------------------------------------------------------------------------

def _lock_owners(organization: Organization) -> int:
    # Locking the organisation row serialises "last owner" decisions.
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    return Membership.objects.filter(organization=organization, role=Role.OWNER).count()


def _check_may_manage(caller: Caller, membership: Membership) -> None:
    if not scopes_for_role(membership.role) <= caller.scopes:
        raise Forbidden("You cannot manage a member whose role is above yours.",
                        code="role_above_yours")


def membership_change_role(*, membership: Membership, role: str, caller: Caller, request=None
                           ) -> Membership:
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}.", fields={"role": ["Unknown role."]})
    if membership.user_id == caller.user.pk:
        raise Forbidden("You cannot change your own role.", code="own_role")
    _check_may_manage(caller, membership)
    if not scopes_for_role(role) <= caller.scopes:
        raise Forbidden(f"You cannot grant the role {role!r}: it is above yours.",
                        code="role_above_yours")
    with transaction.atomic():
        owners = _lock_owners(membership.organization)
        membership.refresh_from_db()
        before = membership.role
        if before == role:
            return membership
        if before == Role.OWNER and owners <= 1:
            raise Conflict("The last owner cannot be demoted; make someone else owner first.",
                           code="last_owner")
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(organization=membership.organization, actor=caller.user,
                     action="member.role_changed", target=membership, request=request,
                     metadata={"user": membership.user.email, "from": before, "to": role})
    return membership


def _membership_delete(*, membership: Membership, actor: User, action: str, request) -> None:
    with transaction.atomic():
        owners = _lock_owners(membership.organization)
        membership.refresh_from_db()
        if membership.role == Role.OWNER and owners <= 1:
            raise Conflict("The last owner cannot leave or be removed; make someone else owner "
                           "first.", code="last_owner")
        audit_record(organization=membership.organization, actor=actor, action=action,
                     target=membership, request=request,
                     metadata={"user": membership.user.email, "role": membership.role})
        membership.delete()


def membership_remove(*, membership: Membership, caller: Caller, request=None) -> None:
    if membership.user_id == caller.user.pk:
        raise Forbidden("Use leave to remove yourself.", code="use_leave")
    _check_may_manage(caller, membership)
    _membership_delete(membership=membership, actor=caller.user, action="member.removed",
                       request=request)


def membership_leave(*, caller: Caller, request=None) -> None:
    _membership_delete(membership=caller.membership, actor=caller.user, action="member.left",
                       request=request)


# --- invitations ----------------------------------------------------------------------------

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_url(token: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/invitations/{token}/"


def _send_invitation(invitation: Invitation, token: str) -> None:
    inviter = invitation.invited_by.email if invitation.invited_by else "Someone"
    send_mail(
        subject=f"You are invited to {invitation.organization.name} on Nexow",
        message=(
            f"{inviter} invited you to join {invitation.organization.name} on Nexow as "
            f"{invitation.get_role_display()}.\n\nAccept the invitation (sign in or sign up with "
            f"this e-mail address first):\n{invitation_url(token)}\n\n"
            f"The link expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC and works once."
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[invitation.email],
    )


def invitation_create(*, organization: Organization, email: str, role: str, caller: Caller,
                      request=None) -> tuple[Invitation, str]:
    """An invitation and its one-time token (only its hash is stored); the e-mail with the link
    is sent when the transaction commits."""
    email = (email or "").strip().lower()
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}.", fields={"role": ["Unknown role."]})
    if not role_can_grant_scopes(caller.scopes, role):
        raise Forbidden(f"You cannot invite someone as {role!r}: it is above your role.",
                        code="role_above_yours")
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise Conflict("That person is already a member.", fields={"email": ["Already a member."]})
    now = timezone.now()
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        pending = Invitation.objects.filter(
            organization=organization, email__iexact=email, accepted_at__isnull=True,
            revoked_at__isnull=True, expires_at__gt=now,
        )
        if pending.exists():
            raise Conflict("A pending invitation for that address exists; revoke it first.",
                           fields={"email": ["Already invited."]})
        invitation = Invitation.objects.create(
            organization=organization, email=email, role=role, token_hash=_token_hash(token),
            invited_by=caller.user, expires_at=now + timedelta(days=INVITATION_DAYS),
        )
        audit_record(organization=organization, actor=caller.user, action="invitation.created",
                     target=invitation, request=request, metadata={"email": email, "role": role})
        transaction.on_commit(lambda: _send_invitation(invitation, token))
    return invitation, token


def role_can_grant_scopes(scopes: frozenset[str], role: str) -> bool:
    return scopes_for_role(role) <= scopes


def invitation_revoke(*, invitation: Invitation, caller: Caller, request=None) -> Invitation:
    if invitation.status != "pending":
        raise Conflict(f"The invitation is already {invitation.status}.", code="not_pending")
    with transaction.atomic():
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(organization=invitation.organization, actor=caller.user,
                     action="invitation.revoked", target=invitation, request=request,
                     metadata={"email": invitation.email})
    return invitation


def invitation_accept(*, token: str, user: User, request=None) -> Membership:
    """Join the organisation of a pending invitation sent to ``user``'s e-mail address."""
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update().select_related("organization")
            .filter(token_hash=_token_hash(token or ""), organization__deleted_at__isnull=True)
            .first()
        )
        if invitation is None:
            raise NotFound("No such invitation.")
        if invitation.status != "pending":
            raise Conflict(f"This invitation is {invitation.status}.", code="not_pending")
        if invitation.email.lower() != user.email.lower():
            raise Forbidden("This invitation was sent to another e-mail address.",
                            code="email_mismatch")
        if Membership.objects.filter(organization=invitation.organization, user=user).exists():
            raise Conflict("You are already a member of this organisation.", code="already_member")
        membership = Membership.objects.create(
            user=user, organization=invitation.organization, role=invitation.role
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_record(organization=invitation.organization, actor=user,
                     action="invitation.accepted", target=invitation, request=request,
                     metadata={"email": invitation.email, "role": invitation.role})
    return membership


# --- API keys -------------------------------------------------------------------------------

def api_key_create(*, caller: Caller, name: str, scopes: list[str] | None = None,
                   expires_in_days: int | None = None, request=None) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which is returned this once and stored nowhere.

    Scopes may only narrow the caller's own; without scopes the key gets the caller's.
    """
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A key needs a name.", fields={"name": ["Required."]})
    days = KEY_DEFAULT_DAYS if expires_in_days is None else expires_in_days
    if not 1 <= days <= KEY_MAX_DAYS:
        raise ApplicationError(
            f"A key expires after 1 to {KEY_MAX_DAYS} days.",
            fields={"expires_in_days": [f"Must be between 1 and {KEY_MAX_DAYS}."]},
        )
    requested = list(scopes) if scopes else sorted(caller.scopes)
    try:
        wanted = expand_scopes(requested)
    except ValueError as exc:
        raise ApplicationError(str(exc), fields={"scopes": [str(exc)]}) from exc
    excess = sorted(wanted - caller.scopes)
    if excess:
        raise Forbidden(
            "A key can only narrow your own permissions; you do not hold: " + ", ".join(excess),
            fields={"scopes": [f"Not in your role: {s}" for s in excess]},
            code="scope_exceeds_role",
        )
    plaintext = key_format.generate_key()
    with transaction.atomic():
        key = ApiKey.objects.create(
            organization=caller.organization, created_by=caller.user, name=name,
            prefix=key_format.visible_prefix(plaintext),
            hashed_key=key_format.hash_key(plaintext),
            scopes=normalize_scopes(wanted),
            expires_at=timezone.now() + timedelta(days=days),
        )
        audit_record(organization=caller.organization, actor=caller.user,
                     action="api_key.created", target=key, request=request,
                     metadata={"prefix": key.prefix, "scopes": key.scopes,
                               "expires_at": key.expires_at.isoformat()})
    return key, plaintext


def api_key_revoke(*, key: ApiKey, caller: Caller, request=None) -> ApiKey:
    if key.created_by_id != caller.user.pk and not caller.has_scope("keys:admin"):
        raise Forbidden("You can only revoke your own keys.", code="not_your_key")
    if key.revoked_at is not None:
        raise Conflict("The key is already revoked.", code="already_revoked")
    with transaction.atomic():
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(organization=key.organization, actor=caller.user, action="api_key.revoked",
                     target=key, request=request, metadata={"prefix": key.prefix})
    return key


def api_key_revoke_by_staff(*, key: ApiKey, actor: User, request=None) -> ApiKey:
    """The platform operator revokes a key (e.g. reported as leaked) from the admin console."""
    with transaction.atomic():
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(organization=key.organization, actor=actor, action="api_key.revoked",
                     target=key, request=request, metadata={"prefix": key.prefix, "by": "staff"})
    return key


__all__ = [
    "api_key_create", "api_key_revoke", "api_key_revoke_by_staff", "invitation_accept", "invitation_create",
    "invitation_revoke", "membership_change_role", "membership_leave", "membership_remove",
    "organization_create", "organization_delete", "organization_update", "role_can_grant",
]
