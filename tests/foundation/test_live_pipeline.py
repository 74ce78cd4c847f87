"""End to end through real processes: a Celery task executed by a separate worker process
delivers an event over the Redis channel layer to a real WebSocket client of the web server."""

import asyncio
import json
import uuid

import pytest
from django.db import connection
from django.test import Client

from tests.support.procs import (
    base_env,
    free_port,
    http_get,
    process,
    wait_for,
    web_server_argv,
    worker_argv,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _member_session(slug: str):
    from accounts.models import Membership, Organization, User

    user = User.objects.create_user("ws-owner@example.com", "a-long-password-1")
    org = Organization.objects.create(name="Pipeline Org", slug=slug)
    Membership.objects.create(user=user, organization=org, role="owner")
    client = Client()
    client.force_login(user)
    return org, client.cookies["sessionid"].value


async def _receive_ping(url: str, origin: str, cookie: str, send_ping, token: str) -> dict:
    import websockets

    async with websockets.connect(url, origin=origin, additional_headers={"Cookie": cookie},
                                  open_timeout=10) as ws:
        await asyncio.get_running_loop().run_in_executor(None, send_ping)
        while True:
            event = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
            if event.get("type") == "system.ping" and event.get("token") == token:
                return event


def test_worker_process_event_reaches_websocket_client_over_redis(tmp_path, settings):
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    org, session_id = _member_session("pipeline")
    env = base_env(DATABASE_URL=_database_url(), NEXOW_EMBEDDED_WORKER="0",
                   NEXOW_VAR_DIR=str(tmp_path / "var"))
    port = free_port()
    with process(web_server_argv(port), env, tmp_path / "web.log") as web, \
            process(worker_argv("pipeline", queues="default"), env, tmp_path / "worker.log"):
        wait_for(lambda: web.poll() is None and http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200,
                 60, message="web server ready")
        wait_for(lambda: "ready" in (tmp_path / "worker.log").read_text(), 60, message="worker ready")

        from nexow_site.tasks import ping

        token = uuid.uuid4().hex
        event = asyncio.run(_receive_ping(
            f"ws://127.0.0.1:{port}/ws/v1/orgs/{org.slug}/", f"http://127.0.0.1:{port}",
            f"sessionid={session_id}", lambda: ping.delay(org.id, token), token))
    assert event["token"] == token
    assert event["worker"].startswith("pipeline-"), "executed by the separate worker process"


def test_websocket_refuses_non_members_and_unauthenticated_clients(tmp_path):
    import websockets
    from websockets.exceptions import InvalidStatus

    org, _ = _member_session("pipeline-private")
    from accounts.models import User

    outsider = User.objects.create_user("outsider@example.com", "a-long-password-2")
    client = Client()
    client.force_login(outsider)
    env = base_env(DATABASE_URL=_database_url(), NEXOW_EMBEDDED_WORKER="0",
                   NEXOW_VAR_DIR=str(tmp_path / "var"))
    port = free_port()

    async def attempt(cookie: str | None, origin: str):
        headers = {"Cookie": cookie} if cookie else {}
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/v1/orgs/{org.slug}/", origin=origin,
                                      additional_headers=headers, open_timeout=10) as ws:
            await asyncio.wait_for(ws.recv(), timeout=10)

    with process(web_server_argv(port), env, tmp_path / "web.log") as web:
        wait_for(lambda: web.poll() is None and http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200,
                 60, message="web server up")
        good_origin = f"http://127.0.0.1:{port}"
        for cookie, origin, expected in [
            (None, good_origin, 4401),
            (f"sessionid={client.cookies['sessionid'].value}", good_origin, 4404),
        ]:
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                asyncio.run(attempt(cookie, origin))
            assert closed.value.rcvd.code == expected
        # A foreign Origin is refused before the handshake completes.
        with pytest.raises(InvalidStatus) as refused:
            asyncio.run(attempt(None, "http://evil.example"))
        assert refused.value.response.status_code == 403


def test_broadcast_queues_events_and_each_group_receives_them_in_order():
    """On Redis, `broadcast` queues the event for the process's sender (the caller does not
    wait for Redis); a group's subscriber still receives every event in broadcast order."""
    from channels.layers import get_channel_layer

    from nexow_site.realtime import _Sender, broadcast

    layer = get_channel_layer()
    group = f"org.ordering-{uuid.uuid4().hex[:8]}"

    async def subscribe() -> str:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        return channel

    channel = asyncio.run(subscribe())
    for seq in range(1, 201):
        assert broadcast([group], {"type": "test.event", "seq": seq}) is True
    assert _Sender.get(layer).flush(timeout=10)

    async def receive_all() -> list[int]:
        return [(await layer.receive(channel))["event"]["seq"] for _ in range(200)]

    assert asyncio.run(receive_all()) == list(range(1, 201))
