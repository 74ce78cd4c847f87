"""WebSocket authentication: the session cookie, or an API key in the Authorization header.

Keys are never read from the query string. Key resolution is provided by `accounts`
(`accounts.keys.authenticate_key_header`); when it is absent only sessions are accepted.
"""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware


@database_sync_to_async
def _resolve_key(header_value: str):
    try:
        from accounts.keys import authenticate_key_header
    except ImportError:
        return None
    return authenticate_key_header(header_value)


class ApiKeyWebSocketMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scope["api_key"] = None
        if auth.lower().startswith("bearer "):
            resolved = await _resolve_key(auth)
            if resolved is not None:
                user, key = resolved
                scope["user"] = user
                scope["api_key"] = key
        return await super().__call__(scope, receive, send)


def WebSocketAuthMiddlewareStack(inner):  # noqa: N802 - mirrors channels' naming
    return AuthMiddlewareStack(ApiKeyWebSocketMiddleware(inner))
