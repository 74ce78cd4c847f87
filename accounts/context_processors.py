"""Template context shared by every portal page: the current organisation and the switcher."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts import selectors


def portal(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"current_organization": None, "organization_choices": []}
    return {
        "current_organization": getattr(request, "organization", None),
        # Lazy: only pages that draw the header pay for the query.
        "organization_choices": SimpleLazyObject(
            lambda: list(selectors.organization_list_for_user(user=user))
        ),
    }
