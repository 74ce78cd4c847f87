"""Embedded mode runs real Celery tasks: a worker thread inside the process consumes the
in-memory transport, and its events reach the in-memory channel layer."""

import subprocess
import textwrap

from tests.support.procs import PY, ROOT, base_env

SCRIPT = textwrap.dedent("""
    import asyncio, django
    django.setup()
    from django.conf import settings
    assert settings.RUN_MODE == "embedded", settings.RUN_MODE
    from channels.layers import get_channel_layer
    from nexow_site.celery import start_embedded_worker
    from nexow_site.tasks import ping

    async def main():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add("org.7", channel)
        start_embedded_worker()
        await asyncio.get_running_loop().run_in_executor(None, lambda: ping.delay(7, "tok-1"))
        message = await asyncio.wait_for(layer.receive(channel), timeout=30)
        print(message["event"]["type"], message["event"]["token"], message["event"]["worker"])

    asyncio.run(main())
""")


def test_tasks_run_on_the_in_process_worker_thread_in_embedded_mode(tmp_path):
    env = base_env(DATABASE_URL=None, REDIS_URL=None, CELERY_BROKER_URL=None,
                   NEXOW_VAR_DIR=str(tmp_path), NEXOW_EMBEDDED_BEAT="0")
    result = subprocess.run([PY, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    # The memory transport exists only inside that one process, so the consumer that answered
    # can only be its worker thread.
    kind, token, _worker = result.stdout.strip().split()
    assert (kind, token) == ("system.ping", "tok-1")
