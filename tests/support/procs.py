"""Helpers for tests that run real processes: the web server, Celery workers, private
PostgreSQL and Redis instances on their own ports (never the shared services)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 10.0) -> tuple[int, dict | str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            body = resp.read().decode()
            status = resp.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read().decode(), exc.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.25, message: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except RuntimeError:
            raise  # a predicate's way of saying "this will never become true"
        except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


def base_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": "nexow_site.settings"})
    from django.conf import settings

    if settings.configured and "SECRET_KEY" not in env:
        # Child processes must sign and read sessions exactly like the test process.
        env["SECRET_KEY"] = settings.SECRET_KEY
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT):
    """Runs a child process for the duration of the block; stops it (SIGTERM, then SIGKILL)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def web_server_argv(port: int) -> list[str]:
    return [PY, "-m", "uvicorn", "nexow_site.asgi:application", "--host", "127.0.0.1",
            "--port", str(port), "--lifespan", "off", "--ws", "auto"]


def worker_argv(name: str = "w1", queues: str = "default,sims,live,reports") -> list[str]:
    return [PY, "-m", "celery", "-A", "nexow_site", "worker", "--loglevel", "INFO", "--pool", "prefork",
            "--concurrency", "1", "-Q", queues, "--hostname", f"{name}-{os.getpid()}@%h",
            "--without-gossip", "--without-mingle"]


class PrivateRedis:
    """A throw-away redis-server on its own port; only ever this instance is stopped."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _tcp_open(self.port), 15, message=f"private redis on {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
        wait_for(lambda: not _tcp_open(self.port), 15, message="private redis to stop")


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (initdb + pg_ctl) on its own port and socket directory."""

    def __init__(self):
        # Its own folder under the system temp dir: pytest's tmp_path is private to root, and the
        # server runs as the postgres user.
        self.workdir = Path(tempfile.mkdtemp(prefix="nexow-pg-"))
        self.port = free_port()
        self.datadir = self.workdir / "pgdata"
        bindir = Path(subprocess.check_output(["pg_config", "--bindir"], text=True).strip())
        self.initdb, self.pg_ctl = str(bindir / "initdb"), str(bindir / "pg_ctl")
        if not Path(self.initdb).exists():  # Debian keeps server binaries apart from pg_config's
            candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
            self.initdb = str(candidates[-1])
            self.pg_ctl = str(candidates[-1].with_name("pg_ctl"))

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:  # initdb refuses to run as root
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        subprocess.run(self._as_postgres([self.initdb, "-D", str(self.datadir), "-A", "trust",
                                          "-U", "postgres", "--no-sync"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(self._as_postgres([self.pg_ctl, "-D", str(self.datadir), "-o", opts, "-w",
                                          "-l", str(self.workdir / "pg.log"), "start"]),
                       check=True, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        subprocess.run(self._as_postgres([self.pg_ctl, "-D", str(self.datadir), "-m", "fast", "-w",
                                          "stop"]), check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
