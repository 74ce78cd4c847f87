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
import atexit
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


class _Sender:
    """One event loop per process, on a daemon thread, that sends to a Redis channel layer.

    channels-redis keeps its connection pool per event loop: `async_to_sync` from a thread
    without a loop makes a new loop, and so a new Redis connection, for every event (≈ 8 ms); a
    loop that lives as long as the process reuses one (≈ 1 ms). The caller does not wait for
    Redis either: events go into a queue that one task drains in order (so each group receives
    them in the order they were broadcast), and a failure is logged there. The event is already
    durable when it is broadcast (it is sent on commit), so a lost notification costs a client
    a resync from REST, never data. Recreated after a fork (Celery's prefork); the queue is
    drained for up to 5 s when the process exits."""

    _lock = threading.Lock()
    _current: _Sender | None = None

    def __init__(self, layer) -> None:
        self.pid, self.layer = os.getpid(), layer
        self.loop = asyncio.new_event_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        threading.Thread(target=self._serve, name="nexow-broadcast", daemon=True).start()

    @classmethod
    def get(cls, layer) -> _Sender:
        with cls._lock:
            current = cls._current
            if current is None or current.pid != os.getpid() or current.layer is not layer \
                    or current.loop.is_closed():
                current = cls._current = cls(layer)
                atexit.register(current.flush)
            return current

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.create_task(self._drain())
        self.loop.run_forever()

    async def _drain(self) -> None:
        while True:
            groups, message = await self.queue.get()
            try:
                for group in groups:
                    await self.layer.group_send(group, message)
            except Exception as exc:  # noqa: BLE001 - recovered by the clients' REST resync
                logger.warning("live event not delivered (%s): %s", type(exc).__name__,
                               message["event"].get("type"))
            finally:
                self.queue.task_done()

    def send(self, groups: list[str], message: dict) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (groups, message))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event has been handed to Redis (tests, process exit)."""
        if self.loop.is_closed() or self.pid != os.getpid():
            return False
        try:
            asyncio.run_coroutine_threadsafe(self.queue.join(), self.loop).result(timeout)
        except Exception:  # noqa: BLE001 - at exit, a stuck Redis must not hold the process
            return False
        return True


def broadcast(groups: Iterable[str], event: dict) -> bool:
    """Sends one event to each group. On Redis the event is queued for the process's sender
    (see `_Sender`) and this returns at once; on the in-memory layer it is delivered before
    returning. False (and a log line) when the layer is missing or refuses it at once."""
    layer = get_channel_layer()
    if layer is None:
        return False
    message = {"type": "event.message", "event": event}
    groups = list(groups)
    try:
        if type(layer).__module__.startswith("channels_redis"):
            _Sender.get(layer).send(groups, message)
            return True

        async def send_all() -> None:
            for group in groups:
                await layer.group_send(group, message)

        # The in-memory layer must be used from the loop that owns its queues; one trip into
        # it for every group (async_to_sync costs milliseconds a call).
        async_to_sync(send_all)()
    except Exception as exc:  # noqa: BLE001 - a lost notification is recovered by REST resync
        logger.warning("live event not delivered (%s): %s", type(exc).__name__, event.get("type"))
        return False
    return True
