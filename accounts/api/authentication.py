"""DRF authentication: ``Authorization: Bearer nx_live_…`` API keys, and browser sessions with
CSRF. A key anywhere in the URL is refused with 400 before anything else looks at it."""

from __future__ import annotations

from urllib.parse import parse_qsl

from rest_framework import authentication, exceptions

from accounts.keys import KEY_PATTERN, KeyRejected, parse_bearer, record_rejection, resolve_key

# Query parameters that only ever carry credentials; a key must not travel in a URL, where
# proxies, browser history and access logs keep it.
_CREDENTIAL_PARAMS = frozenset({"api_key", "apikey", "access_token", "bearer"})


class ApiKeyInUrl(exceptions.ParseError):
    default_detail = ("API keys are not accepted in the URL; send them in the Authorization "
                      "header as 'Bearer <key>'. Treat the key as leaked and revoke it.")
    default_code = "api_key_in_url"


def reject_key_in_query(request) -> None:
    raw = request.META.get("QUERY_STRING", "")
    if not raw:
        return
    for name, value in parse_qsl(raw, keep_blank_values=True):
        if name.lower() in _CREDENTIAL_PARAMS or KEY_PATTERN.search(value) or KEY_PATTERN.search(
                name):
            raise ApiKeyInUrl()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``request.user`` is the key's creator and ``request.auth`` the `ApiKey`."""

    keyword = "Bearer"

    def authenticate(self, request):
        reject_key_in_query(request)
        header = authentication.get_authorization_header(request).decode("latin-1")
        raw = parse_bearer(header)
        if raw is None:
            return None
        if not raw:
            raise exceptions.AuthenticationFailed("Empty bearer token.")
        try:
            return resolve_key(raw)
        except KeyRejected as rejected:
            record_rejection(rejected, request._request)
            message = {
                "revoked": "This API key has been revoked.",
                "expired": "This API key has expired.",
            }.get(rejected.reason, "Invalid API key.")
            raise exceptions.AuthenticationFailed(message) from None

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (with this challenge) rather than 403 to an anonymous caller.
        return f'{self.keyword} realm="api"'


class CsrfSessionAuthentication(authentication.SessionAuthentication):
    """Browser sessions; unsafe methods need the CSRF token (DRF enforces it)."""

    def authenticate(self, request):
        reject_key_in_query(request)
        return super().authenticate(request)
