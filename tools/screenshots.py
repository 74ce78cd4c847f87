"""Screenshots of every portal page, in the light and the dark theme, on demo data.

    python tools/screenshots.py [--out DIR] [--var-dir DIR] [--chromium /usr/bin/chromium]

It prepares a private embedded install (its own ``NEXOW_VAR_DIR``: SQLite database, mail folder),
migrates it, seeds the demo organisation (``seed_demo``) and, when the demo has no market data
yet, a synthetic dataset, two strategies and two finished simulations through the trading
services. It then starts the web server (uvicorn, with the embedded worker), signs in as the demo
owner in headless Chromium (Playwright driving the system's Chromium) and saves
``<page>-<theme>.png`` for each page and both themes, plus phone-sized shots of a few pages.
The shots are for people to look at: overlaps, overflow and raw errors show at a glance.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

DEMO_DATA = r"""
import json
from accounts.models import Organization, User
from trading.models import Analysis, Simulation
from trading.services import analyses, marketdata, simulations, strategies

org = Organization.objects.get(slug="demo")
owner = User.objects.get(email="demo@nexow.localhost")
if not org.datasets.exists():
    ds = marketdata.dataset_generate(organization=org, actor=owner, name="Demo GBM (daily)",
                                     generator="gbm", n_bars=750, seed=11,
                                     options={"volatility": 0.012,
                                              "bar_seconds": 86400})
    sma = strategies.strategy_create(organization=org, actor=owner, name="Trend follower",
                                     kind="sma_cross", description="Fast/slow moving averages.")
    v1 = strategies.version_create(strategy=sma, actor=owner, params={"fast": 10, "slow": 40},
                                   costs={"commission_bps": 2, "slippage_bps": 1}, note="baseline")
    v2 = strategies.version_create(strategy=sma, actor=owner, params={"fast": 5, "slow": 20},
                                   costs={"commission_bps": 2, "slippage_bps": 1}, note="faster")
    rules = strategies.strategy_create(organization=org, actor=owner, name="RSI rules",
                                       kind="rules")
    strategies.version_create(strategy=rules, actor=owner, rules_text=(
        "entry: rsi(close, 14) < 30\nexit: rsi(close, 14) > 60\n"))
    for version in (v1, v2):
        sim = simulations.simulation_create(organization=org, actor=owner,
                                            strategy_version=version, dataset=ds,
                                            config={"cash": 100000})
        simulations.simulation_execute(simulation_id=sim.pk, task_id="demo")
if not Analysis.objects.filter(organization=org).exists():
    # One finished analysis of each kind, run in-process: children, then the aggregate.
    v1 = (Simulation.objects.filter(organization=org, status="succeeded",
                                    strategy_version__strategy__kind="sma_cross")
          .order_by("id").first())
    space = {"fast": [5, 10, 15, 20], "slow": [30, 40, 60]}
    for kind, extra in (("sweep", {"spec": {"space": space, "objective": "sharpe"}}),
                        ("walk_forward", {"spec": {"space": space, "objective": "sharpe",
                                                   "n_windows": 4}}),
                        ("monte_carlo", {"spec": {"n_sims": 2000, "n_chunks": 4, "seed": 1}})):
        targets = ({"simulation": v1} if kind == "monte_carlo" else
                   {"strategy_version": v1.strategy_version, "dataset": v1.dataset})
        a = analyses.analysis_create(organization=org, actor=owner, kind=kind, **targets,
                                     **extra)
        for i in range(a.n_children):
            analyses.analysis_child_execute(analysis_id=a.pk, index=i)
        analyses.analysis_aggregate_execute(analysis_id=a.pk)
out = {
    "analyses": {a.kind: a.pk for a in Analysis.objects.filter(organization=org,
                                                                 status="succeeded")},
    "dataset": org.datasets.first().pk,
    "deployment": org.deployments.order_by("id").values_list("id", flat=True).first(),
    "strategy": org.strategies.order_by("id").first().pk,
    "simulations": list(Simulation.objects.filter(organization=org, status="succeeded")
                        .order_by("id").values_list("id", flat=True)),
}
print("NEXOW_IDS=" + json.dumps(out))
"""


TIMINGS = r"""
import json, statistics, time
from django.test import Client
from accounts.models import User

pages = json.loads(PAGES)
client = Client()
client.force_login(User.objects.get(email="demo@nexow.localhost"))
rows = []
for name, url in pages:
    client.get(url)  # warm-up: templates compiled, session written
    samples = []
    for _ in range(20):
        start = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
    rows.append((name, response.status_code, statistics.median(samples), max(samples)))
print("| Page | Status | Median (ms) | Slowest of 20 (ms) |")
print("|---|---|---|---|")
for name, status, median, worst in rows:
    print(f"| {name} | {status} | {median:.1f} | {worst:.1f} |")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout


def wait_ready(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the server did not answer {url} within {timeout}s")


def pages(slug: str, ids: dict) -> list[tuple[str, str]]:
    sims = ids["simulations"]
    org = f"/orgs/{slug}"
    return [
        ("dashboard", f"{org}/dashboard/"),
        ("overview", f"{org}/"),
        ("market-data", f"{org}/market-data/"),
        ("dataset", f"{org}/market-data/{ids['dataset']}/"),
        ("strategies", f"{org}/strategies/"),
        ("strategy-new", f"{org}/strategies/new/?kind=bollinger"),
        ("strategy-new-rules", f"{org}/strategies/new/?kind=rules"),
        ("strategy", f"{org}/strategies/{ids['strategy']}/"),
        ("simulations", f"{org}/simulations/"),
        ("simulation-new", f"{org}/simulations/new/"),
        ("simulation", f"{org}/simulations/{sims[0]}/"),
        ("compare", f"{org}/simulations/compare/?ids={','.join(map(str, sims))}"),
        ("deployments", f"{org}/deployments/"),
        ("deployment-new", f"{org}/deployments/new/"),
        ("deployment", f"{org}/deployments/{ids['deployment']}/"),
        ("broker-accounts", f"{org}/deployments/accounts/"),
        ("broker-account-new", f"{org}/deployments/accounts/new/"),
        ("analyses", f"{org}/analyses/"),
        ("analysis-new", f"{org}/analyses/new/?kind=sweep"),
        ("analysis-sweep", f"{org}/analyses/{ids['analyses']['sweep']}/"),
        ("analysis-walk-forward", f"{org}/analyses/{ids['analyses']['walk_forward']}/"),
        ("analysis-monte-carlo", f"{org}/analyses/{ids['analyses']['monte_carlo']}/"),
        ("risk", f"{org}/risk/"),
        ("reports", f"{org}/reports/"),
        ("members", f"{org}/members/"),
        ("api-keys", f"{org}/api-keys/"),
        ("audit", f"{org}/audit/"),
        ("settings", f"{org}/settings/"),
        ("security", "/accounts/2fa/"),
    ]


def shoot(base: str, login: dict, ids: dict, out: Path, chromium: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    saved: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="nexow-chromium-") as profile, \
            sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=chromium, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1366, "height": 900})
        page = context.new_page()
        for theme in ("light", "dark"):
            page.emulate_media(color_scheme=theme)
            page.goto(base + "/accounts/logout/")
            page.goto(base + "/accounts/login/")
            path = out / f"login-{theme}.png"
            page.screenshot(path=str(path), full_page=True)
            saved.append(path)
        page.emulate_media(color_scheme="light")
        page.fill("input[name=login]", login["email"])
        page.fill("input[name=password]", login["password"])
        page.click("form button[type=submit]")
        page.wait_for_load_state("networkidle")
        for theme in ("light", "dark"):
            page.emulate_media(color_scheme=theme)
            for name, url in pages(login["organization"], ids):
                page.goto(base + url)
                page.wait_for_load_state("networkidle")
                # Charts draw after plotly.js loads (deferred); give them their frame.
                page.wait_for_timeout(300 if page.query_selector("[data-chart]") else 50)
                path = out / f"{name}-{theme}.png"
                page.screenshot(path=str(path), full_page=True)
                saved.append(path)
                if name == "strategy-new-rules":
                    # The rules editor's live check (htmx), pointing at a bad token.
                    page.fill("textarea[name=rules_text]",
                              "entry: crossover(sma(close, 10), sma(close, 50))\n"
                              "exit: rsi(close, 14) >> 70\n")
                    page.wait_for_selector(".rules-errors")
                    path = out / f"rules-error-{theme}.png"
                    page.screenshot(path=str(path), full_page=True)
                    saved.append(path)
        page.set_viewport_size({"width": 390, "height": 844})
        page.emulate_media(color_scheme="light")
        for name, url in pages(login["organization"], ids):
            if name not in ("dashboard", "simulation", "strategy-new", "market-data",
                            "deployment"):
                continue
            page.goto(base + url)
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(300)
            path = out / f"{name}-phone.png"
            page.screenshot(path=str(path), full_page=True)
            saved.append(path)
            if name == "dashboard":  # the navigation drawer, opened
                page.click(".nav-toggle")
                path = out / "navigation-phone.png"
                page.screenshot(path=str(path))
                saved.append(path)
        context.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="var/screenshots", help="folder for the PNG files")
    parser.add_argument("--var-dir", default="", help="the install's data folder (default: a "
                                                      "new temporary folder, removed after)")
    parser.add_argument("--timings", action="store_true",
                        help="also print the server render time of each page (Django test "
                             "client, median of 20) as a Markdown table")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    var_dir = Path(args.var_dir or tempfile.mkdtemp(prefix="nexow-shots-"))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "nexow_site.settings",
           "NEXOW_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "seed_demo")
    login = json.loads((var_dir / "demo-login.json").read_text())
    output = manage(env, "shell", "-c", DEMO_DATA)
    ids = json.loads(next(line for line in output.splitlines()
                          if line.startswith("NEXOW_IDS="))[len("NEXOW_IDS="):])
    if args.timings:
        shown = [(n, u) for n, u in pages(login["organization"], ids) if n != "security"]
        code = TIMINGS.replace("json.loads(PAGES)", f"json.loads({json.dumps(json.dumps(shown))})")
        print("\n".join(line for line in manage(env, "shell", "-c", code).splitlines()
                        if line.startswith("|")))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(var_dir / "server.log", "ab")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "nexow_site.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--lifespan", "off"], cwd=ROOT,
        env={**env, "NEXOW_SERVER": "1"}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        wait_ready(base + "/healthz")
        saved = shoot(base, login, ids, out, args.chromium)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
        if not args.var_dir:
            shutil.rmtree(var_dir, ignore_errors=True)
    print(f"{len(saved)} screenshots in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
