"""The ``nexow`` command: run the platform and use its offline tools.

    nexow start [--host H] [--port P] [--foreground]   migrate, seed the demo, start, wait for /readyz
    nexow stop                                          graceful shutdown of what start began
    nexow check                                         one line per prerequisite; non-zero on failure
    nexow backtest ...                                  run a backtest on a CSV (trading.engine.cli)
    nexow tax ...                                       tax lots and forms from a trade CSV (reporting.tax.cli)
    nexow audit verify [--org SLUG]                     verify the tamper-evident audit chain
    nexow manage ...                                    any Django management command

Process bookkeeping lives under ``var/run`` (PID files) and ``var/log`` (process logs).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
READY_TIMEOUT_SECONDS = 90
STOP_GRACE_SECONDS = 30


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexow_site.settings")
    import django

    django.setup()


def _var_dir() -> Path:
    from django.conf import settings

    return Path(settings.VAR_DIR)


def _run_dir() -> Path:
    path = _var_dir() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _log_dir() -> Path:
    path = _var_dir() / "log"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); reap it if it is one.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _read_pid(name: str) -> int | None:
    path = _run_dir() / f"{name}.pid"
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def _process_specs(host: str, port: int) -> list[tuple[str, list[str]]]:
    from django.conf import settings

    py = sys.executable
    web = [py, "-m", "uvicorn", "nexow_site.asgi:application", "--host", host, "--port", str(port),
           "--lifespan", "off", "--timeout-graceful-shutdown", str(STOP_GRACE_SECONDS - 5),
           "--no-access-log", "--ws", "auto"]
    if not settings.SERVICES_MODE:
        return [("web", web)]
    workers = os.environ.get("WEB_CONCURRENCY")
    if workers:
        web += ["--workers", workers]
    worker = [py, "-m", "celery", "-A", "nexow_site", "worker", "--loglevel", "INFO",
              "--concurrency", os.environ.get("CELERY_CONCURRENCY", "2"), "-Q", "default,sims,live,reports",
              "--hostname", f"worker-{os.getpid()}@%h"]
    beat = [py, "-m", "celery", "-A", "nexow_site", "beat", "--loglevel", "INFO",
            "--pidfile", "", "--schedule", str(_run_dir() / "celerybeat-schedule")]
    return [("web", web), ("worker", worker), ("beat", beat)]


def _wait_ready(url: str, timeout: float, procs: dict[str, subprocess.Popen]) -> tuple[bool, str]:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                return False, f"{name} exited with code {proc.returncode} (see var/log/{name}.log)"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - our own loopback URL
                if resp.status == 200:
                    return True, "ready"
        except urllib.error.HTTPError as exc:
            try:
                last = ", ".join(json.loads(exc.read()).get("down", [])) or f"HTTP {exc.code}"
            except ValueError:
                last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        time.sleep(0.5)
    return False, f"not ready after {timeout:.0f}s ({last})"


def cmd_start(args: argparse.Namespace) -> int:
    _setup_django()
    from django.core.management import call_command

    running = {name: pid for name in ("web", "worker", "beat") if (pid := _read_pid(name))}
    if running:
        print(f"nexow is already running ({', '.join(f'{n} pid {p}' for n, p in running.items())}); "
              "use `nexow stop` first.")
        return 1
    print("Applying database migrations…", flush=True)
    call_command("migrate", interactive=False, verbosity=0)
    credentials = _seed_demo()

    env = dict(os.environ, NEXOW_SERVER="1", PYTHONUNBUFFERED="1")
    procs: dict[str, subprocess.Popen] = {}
    for name, argv in _process_specs(args.host, args.port):
        log = open(_log_dir() / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child process
        procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                       start_new_session=not args.foreground)
        (_run_dir() / f"{name}.pid").write_text(str(procs[name].pid))

    url = f"http://{args.host}:{args.port}"
    ok, detail = _wait_ready(f"{url}/readyz", args.timeout, procs)
    if not ok:
        print(f"nexow failed to start: {detail}", file=sys.stderr)
        _stop_all(quiet=True)
        return 1
    from django.conf import settings

    print(f"Nexow is running in {settings.RUN_MODE} mode at {url}/")
    print(f"  API: {url}/api/v1/   docs: {url}/api/docs/   console: {url}/console/")
    if credentials:
        print(f"  Demo login: {credentials['email']} / {credentials['password']}")
    print("  Stop it with: nexow stop")
    if args.foreground:
        return _wait_foreground(procs)
    return 0


def _seed_demo() -> dict | None:
    """Seeds the demo organisation when the database is empty and returns its login."""
    from django.core.management import call_command, get_commands

    if "seed_demo" not in get_commands():
        return None
    call_command("seed_demo", verbosity=0)
    path = _var_dir() / "demo-login.json"
    return json.loads(path.read_text()) if path.exists() else None


def _wait_foreground(procs: dict[str, subprocess.Popen]) -> int:
    stopping = False

    def forward(signum, _frame):
        nonlocal stopping
        stopping = True
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while any(p.poll() is None for p in procs.values()):
        time.sleep(0.5)
    for name in procs:
        (_run_dir() / f"{name}.pid").unlink(missing_ok=True)
    return 0 if stopping else 1


def _stop_all(*, quiet: bool = False) -> list[str]:
    lines = []
    for name in ("web", "worker", "beat"):
        pidfile = _run_dir() / f"{name}.pid"
        pid = _read_pid(name)
        if pid is None:
            pidfile.unlink(missing_ok=True)
            continue
        started = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        while _alive(pid) and time.monotonic() - started < STOP_GRACE_SECONDS:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            lines.append(f"{name} (pid {pid}) did not stop within {STOP_GRACE_SECONDS}s: killed")
        else:
            lines.append(f"{name} (pid {pid}) stopped gracefully in {time.monotonic() - started:.1f}s")
        pidfile.unlink(missing_ok=True)
    if not quiet:
        for line in lines or ["nothing was running"]:
            print(line)
    return lines


def cmd_stop(args: argparse.Namespace) -> int:
    _setup_django()
    _stop_all()
    return 0


def check_lines() -> list[tuple[bool | None, str]]:
    """(ok, text) per prerequisite; ok None means not applicable."""
    from django.conf import settings
    from django.db import connection

    from nexow_site import health

    lines: list[tuple[bool | None, str]] = []
    py_ok = sys.version_info[:2] == (3, 11)
    lines.append((py_ok, f"python {sys.version.split()[0]}" + ("" if py_ok else " (3.11 required)")))

    vendor = connection.vendor
    try:
        health.check_database()
        from django.db.migrations.executor import MigrationExecutor

        pending = MigrationExecutor(connection).migration_plan(
            MigrationExecutor(connection).loader.graph.leaf_nodes())
        if pending:
            lines.append((False, f"database ({vendor}): reachable but {len(pending)} migrations "
                                 "are not applied (run `nexow manage migrate`)"))
        else:
            lines.append((True, f"database ({vendor}): reachable and migrated"))
    except Exception as exc:  # noqa: BLE001
        lines.append((False, f"database ({vendor}): unreachable: {type(exc).__name__}: "
                             f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"))
    finally:
        connection.close()

    if settings.REDIS_URL:
        for name in ("cache", "broker", "channel_layer"):
            state = health._run_one(name, health.CHECKS[name])
            label = f"redis ({name.replace('_', ' ')})"
            lines.append((state == "ok", f"{label}: reachable" if state == "ok" else f"{label}: {state}"))
    else:
        lines.append((None, "redis: not configured (embedded mode: in-memory broker and channel layer)"))

    if settings.DEBUG:
        lines.append((None, "secrets: DEBUG is on (development defaults; production checks not enforced)"))
    else:
        # Settings already refused to load with insecure values; reaching here means they passed.
        lines.append((True, "secrets: SECRET_KEY, ALLOWED_HOSTS and CORS origins are production-safe"))
    return lines


def cmd_check(args: argparse.Namespace) -> int:
    try:
        _setup_django()
    except SystemExit as exc:
        print("FAIL settings: refused to load (see the message above)")
        return int(exc.code or 1)
    failed = False
    for ok, text in check_lines():
        tag = "ok  " if ok else ("skip" if ok is None else "FAIL")
        failed |= ok is False
        print(f"{tag} {text}")
    return 1 if failed else 0


def cmd_manage(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexow_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["nexow manage", *argv])
    return 0


def cmd_audit(argv: list[str]) -> int:
    _setup_django()
    from django.core.management import call_command, get_commands
    from django.core.management.base import CommandError

    if "audit" not in get_commands():
        print("nexow audit: the audit log is not installed", file=sys.stderr)
        return 2
    try:
        call_command("audit", *argv)
    except CommandError as exc:
        print(f"nexow audit: {exc}", file=sys.stderr)
        return getattr(exc, "returncode", 1) or 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Sub-tools with their own argument parsers get the rest of the line untouched.
    if argv and argv[0] == "backtest":
        from trading.engine.cli import main as backtest_main

        return backtest_main(argv[1:])
    if argv and argv[0] == "tax":
        from reporting.tax.cli import main as tax_main

        return tax_main(argv[1:])
    if argv and argv[0] == "manage":
        return cmd_manage(argv[1:])
    if argv and argv[0] == "audit":
        return cmd_audit(argv[1:])

    parser = argparse.ArgumentParser(prog="nexow", description="Run and operate the Nexow platform.")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="migrate, seed the demo, start the platform and wait until ready")
    start.add_argument("--host", default=os.environ.get("NEXOW_HOST", DEFAULT_HOST))
    start.add_argument("--port", type=int, default=int(os.environ.get("NEXOW_PORT", DEFAULT_PORT)))
    start.add_argument("--timeout", type=float, default=READY_TIMEOUT_SECONDS)
    start.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops everything")
    sub.add_parser("stop", help="stop what `nexow start` began (SIGTERM, wait, report)")
    sub.add_parser("check", help="check prerequisites; exits non-zero when one fails")
    for name, text in (("backtest", "run a backtest on a bars CSV (see `nexow backtest --help`)"),
                       ("tax", "tax lots and forms from a trades CSV (see `nexow tax --help`)"),
                       ("audit", "audit log tools: `nexow audit verify`"),
                       ("manage", "run a Django management command")):
        sub.add_parser(name, help=text)
    args = parser.parse_args(argv)
    return {"start": cmd_start, "stop": cmd_stop, "check": cmd_check}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
