"""The portal pages' access check, shared by every app: who the signed-in member is in the
organisation of the URL (404 when they are not one, exactly like an unknown organisation), and
whether their role allows an action (403 naming the role)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from allauth.account.decorators import reauthentication_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from accounts.middleware import remember_organization
from accounts.selectors import Caller, caller_for, organization_get_active


def member_or_404(request: HttpRequest, slug: str) -> Caller:
    """The signed-in member's standing in organisation ``slug``; 404 when they have none.
    The organisation becomes the session's current one (the switcher's choice)."""
    cached = getattr(request, "_nexow_caller", None)
    if cached is not None and cached.organization.slug == slug:
        return cached
    organization = organization_get_active(slug=slug)
    caller = (caller_for(user=request.user, organization=organization)
              if organization is not None else None)
    if caller is None:
        raise Http404("No such organisation.")
    remember_organization(request, organization)
    request._nexow_caller = caller  # type: ignore[attr-defined]
    return caller


def member_reauthentication_required(view: Callable[..., HttpResponse] | None = None, *,
                                     allow_get: bool = False):
    """allauth's `reauthentication_required` for a page under ``/orgs/<slug>/``, asked only
    of a member: a non-member gets the 404 of an unknown organisation whatever their sign-in
    state, so the re-authentication prompt (or its refusal) never tells them the page exists."""
    def decorate(inner: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        guarded = reauthentication_required(inner, allow_get=allow_get)

        @wraps(inner)
        def wrapper(request: HttpRequest, slug: str, *args, **kwargs) -> HttpResponse:
            member_or_404(request, slug)
            return guarded(request, slug, *args, **kwargs)
        return wrapper
    return decorate(view) if view is not None else decorate


def require_scope(caller: Caller, scope: str) -> None:
    if not caller.has_scope(scope):
        raise PermissionDenied(f"Your role ({caller.role}) does not allow this.")
