"""Dependency outages: /readyz names what is down with a 503, `nexow check` fails naming it, the
process keeps running, and everything recovers without a restart once the dependency is back.

Each test starts its OWN PostgreSQL cluster and Redis server on free ports and stops only those;
the shared services of the machine are never touched.
"""

import subprocess

import pytest

from tests.support.procs import (
    PY,
    ROOT,
    PrivatePostgres,
    PrivateRedis,
    base_env,
    free_port,
    http_get,
    process,
    wait_for,
    web_server_argv,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def private_stack(tmp_path):
    redis = PrivateRedis(tmp_path)
    pg = PrivatePostgres()
    pg.init()
    pg.start()
    redis.start()
    env = base_env(DATABASE_URL=pg.url, REDIS_URL=redis.url, NEXOW_VAR_DIR=str(tmp_path / "var"),
                   NEXOW_EMBEDDED_WORKER="0")
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    try:
        yield pg, redis, env
    finally:
        redis.stop()
        pg.destroy()


def readiness(port, proc=None):
    if proc is not None and proc.poll() is not None:
        raise RuntimeError(f"the web process exited with {proc.returncode}; see web.log")
    return http_get(f"http://127.0.0.1:{port}/readyz", timeout=15)


def nexow_check(env):
    return subprocess.run([PY, "-m", "nexow_site.cli", "check"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_redis_outage_is_reported_and_recovered_without_restart(private_stack, tmp_path):
    pg, redis, env = private_stack
    port = free_port()
    with process(web_server_argv(port), env, tmp_path / "web.log") as web:
        wait_for(lambda: readiness(port, web)[0] == 200, 60, message="ready with redis up")

        redis.stop()
        status, body = wait_for(lambda: (r := readiness(port)) and r[0] == 503 and r, 30,
                                message="503 while redis is down")
        assert status == 503
        assert {"cache", "broker", "channel_layer"} <= set(body["down"])
        assert "database" not in body["down"]
        check = nexow_check(env)
        assert check.returncode == 1
        assert "FAIL redis (cache): down" in check.stdout
        assert "ok   database (postgresql): reachable and migrated" in check.stdout
        assert web.poll() is None, "the web process keeps running through the outage"

        redis.start()
        wait_for(lambda: readiness(port)[0] == 200, 60, message="ready again after redis is back")
        assert web.poll() is None
        assert nexow_check(env).returncode == 0


def test_postgres_outage_is_reported_and_recovered_without_restart(private_stack, tmp_path):
    pg, redis, env = private_stack
    port = free_port()
    with process(web_server_argv(port), env, tmp_path / "web.log") as web:
        wait_for(lambda: readiness(port, web)[0] == 200, 60, message="ready with postgres up")

        pg.stop()
        status, body = wait_for(lambda: (r := readiness(port)) and r[0] == 503 and r, 30,
                                message="503 while postgres is down")
        assert body["down"] == ["database"]
        assert body["checks"]["database"].startswith("down: OperationalError")
        # An API request that needs the database gets a 503 envelope with Retry-After, not a crash.
        api_status, api_body = http_get(f"http://127.0.0.1:{port}/api/v1/orgs/", timeout=15)
        assert api_status in (401, 403, 503)
        check = nexow_check(env)
        assert check.returncode == 1
        assert "FAIL database (postgresql): unreachable" in check.stdout
        assert web.poll() is None

        pg.start()
        wait_for(lambda: readiness(port)[0] == 200, 60, message="ready again after postgres is back")
        assert web.poll() is None
        assert nexow_check(env).returncode == 0
