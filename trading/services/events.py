"""The durable, sequenced event logs (simulations, deployments) and their live broadcast.

Every stream is a subclass of the abstract `StreamEvent` whose foreign key points at the object
the stream belongs to, and that object carries a ``last_seq`` counter. `stream_event_append`
must run inside a transaction: it allocates the next sequence number of the stream (an UPDATE of
``last_seq``, which also serialises concurrent writers on the row), writes the event row, and
broadcasts the event to ``<kind>.<id>`` and ``org.<org_id>`` only once the transaction commits —
a rolled-back event is never seen live. `simulation_event_append` and the deployments'
`deployment_event_append` are thin wrappers over it.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from nexow_site.realtime import broadcast, org_group, stream_group
from trading.engine.fingerprint import clean
from trading.models import SimulationEvent, StreamEvent

STREAM_KIND = "simulation"


def stream_event_message(event: StreamEvent, *, field: str, stream_kind: str,
                         organization_id: int) -> dict[str, Any]:
    """The broadcast shape of an event: its stream, its owner's id under `field`, its seq."""
    object_id = getattr(event, f"{field}_id")
    return {"type": event.type, "stream": f"{stream_kind}.{object_id}", field: object_id,
            "organization": organization_id, "seq": event.seq,
            "created_at": event.created_at.isoformat(), **event.payload}


def stream_event_append(*, model: type[StreamEvent], field: str, object_id: int,
                        organization_id: int, stream_kind: str, type: str,
                        payload: dict[str, Any] | None = None) -> StreamEvent:
    """Append one event to the stream of `model`'s owner (the object its foreign key `field`
    points at, which holds ``last_seq``); broadcast only once the transaction commits."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"{stream_kind} events are written inside the transaction of their "
                           "change")
    parent = model._meta.get_field(field).related_model
    table = parent._meta.db_table
    with connection.cursor() as cursor:
        # One round trip: bump the stream's counter and read it back (row-locked until commit).
        cursor.execute(f"UPDATE {table} SET last_seq = last_seq + 1 WHERE id = %s "
                       "RETURNING last_seq", [object_id])
        row = cursor.fetchone()
    if row is None:
        raise parent.DoesNotExist(f"no {stream_kind} {object_id}")
    event = model.objects.create(**{f"{field}_id": object_id}, seq=row[0], type=type,
                                 payload=clean(payload or {}))
    message = stream_event_message(event, field=field, stream_kind=stream_kind,
                                   organization_id=organization_id)
    groups = [stream_group(stream_kind, object_id), org_group(organization_id)]
    transaction.on_commit(lambda: broadcast(groups, message))
    return event


def event_message(event: SimulationEvent, organization_id: int) -> dict[str, Any]:
    return stream_event_message(event, field="simulation", stream_kind=STREAM_KIND,
                                organization_id=organization_id)


def simulation_event_append(*, simulation_id: int, organization_id: int, type: str,
                            payload: dict[str, Any] | None = None) -> SimulationEvent:
    return stream_event_append(model=SimulationEvent, field="simulation",  # type: ignore[return-value]
                               object_id=simulation_id, organization_id=organization_id,
                               stream_kind=STREAM_KIND, type=type, payload=payload)
