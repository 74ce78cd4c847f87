"""The durable, sequenced event log of a simulation and its live broadcast.

`simulation_event_append` must run inside a transaction: it allocates the next sequence number of
the simulation's stream (an UPDATE of ``last_seq``, which also serialises concurrent writers on
the row), writes the `SimulationEvent`, and broadcasts the event to ``simulation.<id>`` and
``org.<org_id>`` only once the transaction commits — a rolled-back event is never seen live.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from nexow_site.realtime import broadcast, org_group, stream_group
from trading.engine.fingerprint import clean
from trading.models import Simulation, SimulationEvent

STREAM_KIND = "simulation"


def event_message(event: SimulationEvent, organization_id: int) -> dict[str, Any]:
    return {
        "type": event.type,
        "stream": f"{STREAM_KIND}.{event.simulation_id}",
        "simulation": event.simulation_id,
        "organization": organization_id,
        "seq": event.seq,
        "created_at": event.created_at.isoformat(),
        **event.payload,
    }


def simulation_event_append(*, simulation_id: int, organization_id: int, type: str,
                            payload: dict[str, Any] | None = None) -> SimulationEvent:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("simulation events are written inside the transaction of their change")
    table = Simulation._meta.db_table
    with connection.cursor() as cursor:
        # One round trip: bump the stream's counter and read it back (row-locked until commit).
        cursor.execute(f"UPDATE {table} SET last_seq = last_seq + 1 WHERE id = %s "
                       "RETURNING last_seq", [simulation_id])
        (seq,) = cursor.fetchone()
    event = SimulationEvent.objects.create(simulation_id=simulation_id, seq=seq, type=type,
                                           payload=clean(payload or {}))
    message = event_message(event, organization_id)
    groups = [stream_group(STREAM_KIND, simulation_id), org_group(organization_id)]
    transaction.on_commit(lambda: broadcast(groups, message))
    return event
