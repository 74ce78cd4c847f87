"""The portal pages' access check, shared by every app: who the signed-in member is in the
organisation of the URL (404 when they are not one, exactly like an unknown organisation), and
whether their role allows an action (403 naming the role)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from accounts.middleware import remember_organization
from accounts.selectors import Caller, caller_for, organization_get_active


def member_or_404(request: HttpRequest, slug: str) -> Caller:
    """The signed-in member's standing in organisation ``slug``; 404 when they have none.
    The organisation becomes the session's current one (the switcher's choice)."""
    organization = organization_get_active(slug=slug)
    caller = (caller_for(user=request.user, organization=organization)
              if organization is not None else None)
    if caller is None:
        raise Http404("No such organisation.")
    remember_organization(request, organization)
    return caller


def require_scope(caller: Caller, scope: str) -> None:
    if not caller.has_scope(scope):
        raise PermissionDenied(f"Your role ({caller.role}) does not allow this.")
