"""Platform tasks.

``nexow.ping`` is a pipeline diagnostic: a worker picks it up and broadcasts a ``system.ping``
event to an organisation's WebSocket group, proving broker → worker → channel layer → browser
works end to end (`nexow manage ping_pipeline` and the integration tests use it).
"""

from celery import shared_task

from nexow_site.realtime import broadcast, org_group


@shared_task(name="nexow.ping", queue="default", ignore_result=True, time_limit=30, soft_time_limit=20)
def ping(organization_id: int, token: str) -> None:
    from celery import current_task

    broadcast([org_group(organization_id)],
              {"type": "system.ping", "token": token, "worker": current_task.request.hostname})
