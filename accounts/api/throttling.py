"""API rate limits on the shared cache: per API key, per signed-in user, and per IP for anonymous
callers, with the rates in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (``api_key``, ``user``,
``anon``). A refused request is a 429 with ``Retry-After``; every API response carries
``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (epoch seconds)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiKey

_REQUEST_ATTR = "nexow_rate_limit"


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    remaining: int
    reset: int  # epoch seconds when the oldest counted request leaves the window


class ApiRateThrottle(SimpleRateThrottle):
    """One throttle choosing its bucket by who is calling, so the headers describe exactly the
    limit that applies to this caller."""

    def __init__(self) -> None:  # the rate depends on the caller; resolved per request
        self.rate = None

    def _scope_for(self, request) -> tuple[str, str]:
        if isinstance(request.auth, ApiKey):
            return "api_key", f"key:{request.auth.pk}"
        if request.user is not None and request.user.is_authenticated:
            return "user", f"user:{request.user.pk}"
        return "anon", f"ip:{self.get_ident(request)}"

    def get_rate(self) -> str | None:
        # Read at request time so settings overrides (tests, per-environment) apply at once.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.ident}

    def allow_request(self, request, view) -> bool:
        self.scope, self.ident = self._scope_for(request)
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        allowed = super().allow_request(request, view)
        self._remember(request, allowed)
        return allowed

    def _remember(self, request, allowed: bool) -> None:
        now = self.now
        history = self.history
        oldest = history[-1] if history else now
        reset = math.ceil(oldest + self.duration)
        remaining = max(0, self.num_requests - len(history)) if allowed else 0
        state = RateLimitState(limit=self.num_requests, remaining=remaining, reset=reset)
        setattr(getattr(request, "_request", request), _REQUEST_ATTR, state)


def apply_rate_limit_headers(request, response):
    state: RateLimitState | None = getattr(getattr(request, "_request", request), _REQUEST_ATTR,
                                           None)
    if state is not None:
        response["X-RateLimit-Limit"] = str(state.limit)
        response["X-RateLimit-Remaining"] = str(state.remaining)
        response["X-RateLimit-Reset"] = str(state.reset)
    return response


class RateLimitHeadersMiddleware:
    """Adds the X-RateLimit-* headers to API views that do not inherit the accounts API base
    (which adds them itself)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return apply_rate_limit_headers(request, self.get_response(request))
