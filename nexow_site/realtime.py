"""Live updates over Channels: group names, the registry of subscribable streams, broadcasting.

The WebSocket is a notification path, never the source of truth (DESIGN.md): every event carries
the sequence number of its stream, clients that see a gap re-fetch from REST, and a broadcast that
fails (channel layer down) is logged and dropped rather than failing the work that produced it.

Group names are explicit: ``org.<id>`` for organisation-wide events and ``<kind>.<id>`` for one
object's stream (``simulation.42``). Apps register the kinds of stream a client may subscribe to,
with the scope needed and how to check that an object belongs to the organisation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger("nexow.realtime")


def org_group(organization_id: int) -> str:
    return f"org.{organization_id}"


def stream_group(kind: str, object_id: int | str) -> str:
    return f"{kind}.{object_id}"


@dataclass(frozen=True)
class StreamKind:
    name: str
    scope: str  # e.g. "simulations:read"
    belongs_to: Callable[[int, str], bool]  # (organization_id, object_id) -> bool


STREAM_KINDS: dict[str, StreamKind] = {}


def register_stream(name: str, *, scope: str, belongs_to: Callable[[int, str], bool]) -> None:
    STREAM_KINDS[name] = StreamKind(name, scope, belongs_to)


_loop_lock = threading.Lock()
_loop: tuple[int, asyncio.AbstractEventLoop] | None = None


def _sender_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, on a daemon thread, for sending to a Redis channel layer.

    channels-redis keeps its connection pool per event loop: `async_to_sync` from a thread without
    a loop makes a new loop, and so a new Redis connection, for every event (≈ 8 ms); a loop that
    lives as long as the process reuses one (≈ 1 ms). Recreated after a fork (Celery's prefork)."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop[0] != os.getpid() or _loop[1].is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="nexow-broadcast", daemon=True).start()
            _loop = (os.getpid(), loop)
        return _loop[1]


def broadcast(groups: Iterable[str], event: dict) -> bool:
    """Sends one event to each group; returns False (and logs) when the channel layer is down."""
    layer = get_channel_layer()
    if layer is None:
        return False
    message = {"type": "event.message", "event": event}
    groups = list(groups)

    async def send_all() -> None:
        for group in groups:
            await layer.group_send(group, message)

    try:
        if type(layer).__module__.startswith("channels_redis"):
            asyncio.run_coroutine_threadsafe(send_all(), _sender_loop()).result(timeout=10)
        else:
            # The in-memory layer must be used from the loop that owns its queues; one trip into
            # it for every group (async_to_sync costs milliseconds a call).
            async_to_sync(send_all)()
    except Exception as exc:  # noqa: BLE001 - a lost notification is recovered by REST resync
        logger.warning("live event not delivered (%s): %s", type(exc).__name__, event.get("type"))
        return False
    return True
