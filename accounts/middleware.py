"""The current organisation of a portal request, kept in the session.

`CurrentOrganizationMiddleware` sets ``request.organization``: the organisation the signed-in user
last chose (organisation switcher, or the last organisation page they opened), provided they are
still a member of it; otherwise their first organisation; ``None`` for anonymous users and people
without any membership. The API does not use it — API views resolve the organisation from the
URL — so API, static and probe paths skip the lookup and get ``None``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from accounts import selectors

SESSION_KEY = "nexow.organization"
# Paths that never draw a portal page: no query for them.
_SKIPPED_PREFIXES = ("/api/", "/static/", "/media/", "/healthz", "/readyz")


def remember_organization(request: HttpRequest, organization) -> None:
    """Makes ``organization`` the current one for the rest of this session."""
    if request.session.get(SESSION_KEY) != organization.slug:
        request.session[SESSION_KEY] = organization.slug
    request.organization = organization


def current_organization(request: HttpRequest):
    user = request.user
    if not user.is_authenticated:
        return None
    organizations = selectors.organization_list_for_user(user=user)
    chosen = request.session.get(SESSION_KEY)
    if chosen:
        organization = organizations.filter(slug=chosen).first()
        if organization is not None:
            return organization
        # Removed from it (or it was deleted) since: fall back silently.
        request.session.pop(SESSION_KEY, None)
    return organizations.first()


class CurrentOrganizationMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(_SKIPPED_PREFIXES):
            request.organization = None
        else:
            request.organization = current_organization(request)
        return self.get_response(request)
