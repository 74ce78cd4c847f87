"""Liveness and readiness.

``/healthz`` answers as long as the process can serve a request. ``/readyz`` checks each
dependency the platform needs (database, cache, broker, channel layer) with short timeouts, so an
outage gives a prompt 503 naming what is down rather than a hung probe. The same checks back
``nexow check``.
"""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

CHECK_TIMEOUT_SECONDS = 3.0


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return the value just written")
    cache.delete(key)


def check_broker() -> None:
    from nexow_site.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        # A redis broker needs a real round trip; ensure_connection alone can be lazy.
        client = getattr(conn.default_channel, "client", None)
        if client is not None:
            client.ping()


def check_channel_layer() -> None:
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    if backend.startswith("channels_redis"):
        import redis

        host = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
        host = host["address"] if isinstance(host, dict) else host
        client = redis.Redis.from_url(host, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "channel_layer": check_channel_layer,
}


def _run_one(name: str, fn: Callable[[], None]) -> str:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - any failure means "down", reported by name
        return f"down: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}".rstrip(": ")
    finally:
        if name == "database":
            # Never keep a connection opened by a probe thread.
            connection.close()
    return "ok"


def run_checks(timeout: float = CHECK_TIMEOUT_SECONDS) -> dict[str, str]:
    """Runs every check in parallel; a check that does not answer in time counts as down."""
    results: dict[str, str] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="readyz")
    try:
        futures = {name: pool.submit(_run_one, name, fn) for name, fn in CHECKS.items()}
        deadline = time.monotonic() + timeout
        for name, fut in futures.items():
            try:
                results[name] = fut.result(timeout=max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                results[name] = f"down: no answer within {timeout:g}s"
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return results


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    results = run_checks()
    down = sorted(name for name, state in results.items() if state != "ok")
    body = {"status": "unavailable" if down else "ready", "mode": settings.RUN_MODE,
            "checks": results, "down": down}
    response = JsonResponse(body, status=503 if down else 200)
    if down:
        response["Retry-After"] = "5"
    return response
