"""The organisation WebSocket: ``/ws/v1/orgs/<org_slug>/``.

Authentication comes from the session cookie or an ``Authorization: Bearer`` API key (see
ws_auth.py); the origin is checked by Channels' AllowedHostsOriginValidator. Authorisation happens
in ``connect()`` before any group is joined: the caller must be a member of the organisation (or
hold a key bound to it). Another organisation's slug is refused exactly like an unknown one.

Client messages: ``{"action": "subscribe", "stream": "simulation.42"}`` and ``unsubscribe``;
the server answers ``{"type": "subscribed", "stream": ...}`` or ``{"type": "error", ...}`` and then
forwards that stream's events.
"""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from nexow_site.realtime import STREAM_KINDS, org_group, stream_group

logger = logging.getLogger("nexow.ws")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
MAX_SUBSCRIPTIONS = 200


@database_sync_to_async
def _resolve_access(user, api_key, slug: str) -> tuple[int, frozenset[str]] | None:
    """(organisation id, the caller's scopes there), or None when not a member / key of it."""
    from accounts.selectors import caller_for, organization_get_active

    organization = organization_get_active(slug=slug)
    if organization is None:
        return None
    caller = caller_for(user=user, organization=organization, api_key=api_key)
    if caller is None:
        return None
    return organization.pk, frozenset(caller.scopes)


@database_sync_to_async
def _stream_allowed(kind, organization_id: int, object_id: str) -> bool:
    return kind.belongs_to(organization_id, object_id)


class OrganizationConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        # Refusals accept first and then close with an application code (4401/4404), so that
        # clients can tell "log in again" from "no such organisation"; no group is joined before.
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        slug = self.scope["url_route"]["kwargs"]["org_slug"]
        access = await _resolve_access(user, self.scope.get("api_key"), slug)
        if access is None or "org:read" not in access[1]:
            await self.accept()
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.organization_id, self.scopes = access
        self.streams: set[str] = set()
        await self.channel_layer.group_add(org_group(self.organization_id), self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if not hasattr(self, "organization_id"):
            return
        groups = [org_group(self.organization_id), *self.streams]
        for group in groups:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception as exc:  # noqa: BLE001 - a vanished client must not spill errors
                logger.info("group discard after disconnect failed: %s", type(exc).__name__)

    async def receive_json(self, content, **kwargs) -> None:
        action = content.get("action") if isinstance(content, dict) else None
        stream = content.get("stream", "") if isinstance(content, dict) else ""
        if action not in ("subscribe", "unsubscribe") or not isinstance(stream, str):
            await self.send_json({"type": "error", "code": "invalid",
                                  "message": "expected {\"action\": \"subscribe\"|\"unsubscribe\", \"stream\": \"<kind>.<id>\"}"})
            return
        kind_name, _, object_id = stream.partition(".")
        kind = STREAM_KINDS.get(kind_name)
        if kind is None or not object_id:
            await self.send_json({"type": "error", "code": "not_found", "stream": stream,
                                  "message": "unknown stream"})
            return
        group = stream_group(kind_name, object_id)
        if action == "unsubscribe":
            self.streams.discard(group)
            await self.channel_layer.group_discard(group, self.channel_name)
            await self.send_json({"type": "unsubscribed", "stream": stream})
            return
        if kind.scope not in self.scopes or not await _stream_allowed(kind, self.organization_id, object_id):
            # Same answer for "not yours" and "does not exist".
            await self.send_json({"type": "error", "code": "not_found", "stream": stream,
                                  "message": "unknown stream"})
            return
        if len(self.streams) >= MAX_SUBSCRIPTIONS:
            await self.send_json({"type": "error", "code": "too_many_subscriptions", "stream": stream,
                                  "message": f"at most {MAX_SUBSCRIPTIONS} streams per connection"})
            return
        self.streams.add(group)
        await self.channel_layer.group_add(group, self.channel_name)
        await self.send_json({"type": "subscribed", "stream": stream})

    async def event_message(self, message) -> None:
        await self.send_json(message["event"])
