"""The `nexow` command: check, start and stop, as an operator uses them."""

import subprocess
import urllib.error

import pytest

from tests.support.procs import PY, ROOT, base_env, free_port, http_get

NEXOW = [PY, "-m", "nexow_site.cli"]


def run_nexow(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*NEXOW, *args], cwd=ROOT, env=env or base_env(), capture_output=True,
                          text=True, timeout=timeout)


def test_check_passes_on_a_migrated_embedded_install(tmp_path):
    env = base_env(NEXOW_VAR_DIR=str(tmp_path), DATABASE_URL=None, REDIS_URL=None)
    subprocess.run([*NEXOW, "manage", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    result = run_nexow("check", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("ok   python 3.11")
    assert "ok   database (sqlite): reachable and migrated" in lines
    assert any(line.startswith("skip redis: not configured") for line in lines)


def test_check_fails_naming_an_unmigrated_database(tmp_path):
    env = base_env(NEXOW_VAR_DIR=str(tmp_path), DATABASE_URL=None, REDIS_URL=None)
    result = run_nexow("check", env=env)
    assert result.returncode == 1
    assert any(line.startswith("FAIL database (sqlite): reachable but") and "not applied" in line
               for line in result.stdout.splitlines()), result.stdout


def test_check_fails_naming_an_unreachable_database_and_redis(tmp_path):
    closed = free_port()
    env = base_env(NEXOW_VAR_DIR=str(tmp_path),
                   DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed}/nexow",
                   REDIS_URL=f"redis://127.0.0.1:{closed}/0")
    result = run_nexow("check", env=env, timeout=60)
    assert result.returncode == 1
    out = result.stdout
    assert "FAIL database (postgresql): unreachable" in out
    assert "FAIL redis (broker): down" in out
    assert "FAIL redis (cache): down" in out


def test_check_fails_when_production_settings_are_insecure(tmp_path):
    env = base_env(NEXOW_VAR_DIR=str(tmp_path), DEBUG="0", SECRET_KEY="weak", ALLOWED_HOSTS="x.example")
    result = run_nexow("check", env=env)
    assert result.returncode == 2
    assert "SECRET_KEY is insecure" in result.stderr
    assert "FAIL settings" in result.stdout


def test_start_brings_the_platform_up_and_stop_shuts_it_down_gracefully(tmp_path):
    port = free_port()
    env = base_env(NEXOW_VAR_DIR=str(tmp_path), NEXOW_PORT=str(port))
    started = run_nexow("start", env=env, timeout=240)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"at http://127.0.0.1:{port}/" in started.stdout
        assert (tmp_path / "run" / "web.pid").exists()
        status, body = http_get(f"http://127.0.0.1:{port}/readyz")
        assert status == 200 and body["status"] == "ready", body
        again = run_nexow("start", env=env)
        assert again.returncode == 1 and "already running" in again.stdout
    finally:
        stopped = run_nexow("stop", env=env, timeout=120)
    assert stopped.returncode == 0
    assert "web (pid" in stopped.stdout and "stopped gracefully" in stopped.stdout
    assert not (tmp_path / "run" / "web.pid").exists()
    with pytest.raises(urllib.error.URLError):
        http_get(f"http://127.0.0.1:{port}/healthz", timeout=2)
