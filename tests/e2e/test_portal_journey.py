"""The portal in a real browser: one person's first hour on Nexow, end to end.

A real server process (uvicorn, embedded mode: its own SQLite database under a private
``NEXOW_VAR_DIR``, the in-process Celery worker, the in-memory channel layer, e-mail written to
files under ``var/mail/``) and Debian's Chromium driven by Playwright. The journey: sign up,
verify the e-mail from the mail folder, enable two-factor authentication (TOTP computed here),
create an organisation, invite a viewer, import a CSV, create a strategy, run a simulation and
watch its progress bar reach 100% without the page reloading, download its PDF performance
report, create and revoke an API key, then sign up as the invited viewer and find no trading
action.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.procs import (
    PY,
    ROOT,
    base_env,
    free_port,
    http_get,
    process,
    wait_for,
    web_server_argv,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
OWNER = "owner@e2e.example"
VIEWER = "viewer@e2e.example"
PASSWORD = "a long and unusual passphrase 7"


def totp_code(secret: str, *, at: float | None = None) -> str:
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    return format_hotp_value(hotp_value(secret, int((at or time.time()) // 30)))


def daily_csv(path: Path, n: int = 400) -> Path:
    """A random walk of daily bars: enough for an SMA crossover to trade a few times."""
    rng = np.random.default_rng(5)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
    opens = np.r_[close[0], close[:-1]]
    days = np.datetime64("2022-01-03") + np.arange(n)
    lines = ["timestamp,open,high,low,close,volume"]
    for d, o, c in zip(days, opens, close, strict=True):
        hi, lo = max(o, c) * 1.004, min(o, c) * 0.996
        lines.append(f"{d}T00:00:00Z,{o:.4f},{hi:.4f},{lo:.4f},{c:.4f},{rng.integers(1000, 9000)}")
    path.write_text("\n".join(lines) + "\n")
    return path


class Mailbox:
    """The file e-mail backend's folder: one .log file per connection."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def text(self) -> str:
        if not self.folder.exists():
            return ""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.folder.glob("*")))

    def link(self, pattern: str, recipient: str) -> str:
        def find():
            # The file backend writes each message followed by a line of 79 dashes.
            for message in self.text().split("-" * 79):
                if recipient in message:
                    match = re.search(pattern, message.replace("=\n", ""))
                    if match:
                        return match.group(0)
            return None

        return wait_for(find, 20, message=f"an e-mail to {recipient} with {pattern}")


@pytest.fixture(scope="module")
def server():
    workdir = Path(tempfile.mkdtemp(prefix="nexow-e2e-"))
    var = workdir / "var"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = base_env(NEXOW_VAR_DIR=str(var), DATABASE_URL="", REDIS_URL="", EMAIL_URL="",
                   NEXOW_SERVER="1", SITE_URL=base)
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                   check=True)
    with process(web_server_argv(port), env, workdir / "server.log"):
        wait_for(lambda: http_get(base + "/healthz")[0] == 200, 60, message="the web server")
        yield {"base": base, "mail": Mailbox(var / "mail"), "workdir": workdir, "env": env}
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def browser_context(server):
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="nexow-chromium-")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 900})
        context.set_default_timeout(20_000)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


def sign_up_and_verify(page, base: str, mailbox: Mailbox, email: str) -> None:
    page.goto(base + "/accounts/signup/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("main form button[type=submit]")
    link = mailbox.link(r"https?://\S+/accounts/confirm-email/\S+/", email)
    page.goto(link)
    page.click("main form button[type=submit]")  # allauth confirms on POST, not on GET
    page.wait_for_load_state("networkidle")


def test_first_hour_on_nexow(server, browser_context, tmp_path):
    base, mailbox = server["base"], server["mail"]
    browser_context.clear_cookies()
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    # --- sign up and verify the e-mail address -------------------------------------------
    sign_up_and_verify(page, base, mailbox, OWNER)
    assert OWNER in page.inner_text("header")

    # --- create the organisation (people without one are sent to this form) ---------------
    page.goto(base + "/")
    assert page.url.endswith("/orgs/new/")
    page.fill("input[name=name]", "E2E Fund")
    slug_field = page.query_selector("input[name=slug]")
    if slug_field:
        slug_field.fill("e2e")
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/orgs/e2e/"))
    org = base + "/orgs/e2e"

    # --- the theme toggle: stored, applied on the next page, redrawn in dark colours ---------
    page.emulate_media(color_scheme="light")
    light_bg = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    page.click("[data-theme-toggle]")
    page.goto(org + "/dashboard/")
    assert page.get_attribute("html", "data-theme") == "dark"
    dark_bg = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    assert dark_bg != light_bg
    page.click("[data-theme-toggle]")
    assert page.get_attribute("html", "data-theme") == "light"

    # --- two-factor authentication ---------------------------------------------------------
    page.goto(base + "/accounts/2fa/totp/activate/")
    if "/reauthenticate/" in page.url:  # signed in by the e-mail link: confirm the password
        page.fill("input[name=password]", PASSWORD)
        page.click("main form button[type=submit]")
        page.wait_for_url(re.compile(r"/2fa/totp/activate/"))
    secret = page.input_value("#authenticator_secret")
    page.fill("input[name=code]", totp_code(secret))
    page.click("main form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "/accounts/2fa/totp/activate/" not in page.url, page.inner_text("main")

    # --- invite a viewer -------------------------------------------------------------------
    page.goto(org + "/members/")
    page.fill("input[name=email]", VIEWER)
    page.select_option("select[name=role]", "viewer")
    page.click("form[action$='/members/invite/'] button[type=submit]")
    assert f"Invitation sent to {VIEWER}" in page.inner_text(".messages")
    invitation = mailbox.link(r"https?://\S+/invitations/[^/\s]+/", VIEWER)

    # --- import market data ----------------------------------------------------------------
    page.goto(org + "/market-data/")
    page.fill("#import input[name=name]", "Daily walk")
    page.set_input_files("#import input[name=file]", str(daily_csv(tmp_path / "walk.csv")))
    page.fill("#import input[name=symbol]", "WALK")
    page.select_option("#import select[name=calendar]", "24/7")
    page.click("#import button[type=submit]")
    page.wait_for_url(re.compile(r"/market-data/\d+/"))
    assert "Imported “Daily walk”: 400 rows." in page.inner_text(".messages")
    page.wait_for_selector("[data-chart='candles'] .main-svg")  # plotly drew the candles

    # --- a strategy from a built-in type ---------------------------------------------------
    page.goto(org + "/strategies/new/?kind=sma_cross")
    page.fill("input[name=name]", "Crossover")
    page.fill("input[name=param_fast]", "5")
    page.fill("input[name=param_slow]", "20")
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/strategies/\d+/"))

    # --- simulate and watch it finish without reloading ------------------------------------
    page.goto(org + "/simulations/new/")
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/simulations/\d+/$"))
    page.evaluate("window.__sameDocument = true")
    page.wait_for_selector("#sim-results [data-sim-done]", timeout=60_000)
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    assert "Total return" in page.inner_text("#sim-results")
    page.wait_for_selector("[data-chart='line'] .main-svg")

    # A run long enough to watch: an event-driven market maker over 50,000 synthetic bars
    # reports progress a few times per second while its equity curve grows.
    page.goto(org + "/market-data/")
    page.fill("form[action$='/generate/'] input[name=name]", "Minute walk")
    page.fill("form[action$='/generate/'] input[name=n_bars]", "50000")
    page.click("form[action$='/generate/'] button[type=submit]")
    page.wait_for_url(re.compile(r"/market-data/\d+/"))
    dataset_id = page.url.rstrip("/").rsplit("/", 1)[1]
    page.goto(org + "/strategies/new/?kind=market_making")
    page.fill("input[name=name]", "Quoter")
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/strategies/\d+/"))
    page.click("a:has-text('Simulate v1')")
    page.select_option("select[name=dataset]", dataset_id)
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/simulations/\d+/$"))
    page.evaluate("""() => {
        window.__sameDocument = true;
        window.__progress = [];
        document.addEventListener("nexow:simulation", (e) => {
            const bar = document.querySelector("#sim-results progress");
            if (bar) { window.__progress.push(bar.value); }
        });
    }""")
    page.wait_for_selector("[data-live-equity] .main-svg", timeout=60_000)  # the growing curve
    page.wait_for_selector("#sim-results [data-sim-done]", timeout=90_000)
    seen = page.evaluate("window.__progress")
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    assert any(0 < value < 100 for value in seen), seen  # moved while it ran
    assert seen[-1] == 100 and seen == sorted(seen), seen  # and reached 100%
    simulation_id = page.url.rstrip("/").rsplit("/", 1)[1]

    # --- a PDF performance report of that run (the reporting app's page) --------------------
    page.goto(org + "/reports/")
    page.select_option("select[name=kind]", "performance")
    page.fill("textarea[name=parameters]", f'{{"simulation_id": {simulation_id}}}')
    page.click("main form button[type=submit]")

    def download_link():
        page.goto(org + "/reports/")  # the archive page is not live: look again
        return page.query_selector("a:has-text('Download')")

    wait_for(download_link, 60, interval=1, message="the report to be generated")
    with page.expect_download() as download:
        page.click("a:has-text('Download')")
    assert Path(download.value.path()).read_bytes()[:5] == b"%PDF-"

    # --- an API key: created (after re-authentication) and revoked ------------------------
    page.goto(org + "/api-keys/")
    if "/reauthenticate/" in page.url:
        page.fill("input[name=code]", totp_code(secret, at=time.time() + 30))
        page.click("main form button[type=submit]")
        page.wait_for_url(re.compile(r"/api-keys/"))
    page.fill("input[name=name]", "notebook")
    page.click("main form button[type=submit]")
    plaintext = page.inner_text(".secret")
    assert plaintext.startswith("nx_")
    status, _ = http_get(base + "/api/v1/orgs/e2e/simulations/")
    assert status == 401  # the key is for scripts, not for the anonymous browser
    page.click("form[action*='/revoke/'] button[type=submit]")
    assert "revoked" in page.inner_text("main").lower()

    # --- the viewer joins and sees no trading action ---------------------------------------
    page.click("header form[action$='/logout/'] button")
    sign_up_and_verify(page, base, mailbox, VIEWER)
    page.goto(invitation)
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/orgs/e2e/"))
    page.goto(org + "/dashboard/")
    main = page.inner_html("main")
    for action in ("/simulations/new/", "/market-data/import/", "/strategies/new/"):
        assert action not in main, action
    response = page.goto(org + "/simulations/new/")
    assert response.status == 403
    page.goto(org + "/simulations/")
    assert page.query_selector("tr[data-sim]") is not None  # but the results are visible

    assert not [e for e in errors if "Content Security Policy" in e], errors


SEED_WATCHER = r"""
from allauth.account.models import EmailAddress
from accounts import services
from accounts.models import User
from trading.services import marketdata, strategies

user = User.objects.create_user(email="watcher@e2e.example", password=PASSWORD)
EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
org = services.organization_create(name="Gap Fund", slug="gaps", actor=user)
dataset = marketdata.dataset_generate(organization=org, actor=user, name="walk", generator="gbm",
                                      n_bars=100000, seed=2, options={"volatility": 0.001})
quoter = strategies.strategy_create(organization=org, actor=user, name="quoter",
                                    kind="market_making")
version = strategies.version_create(strategy=quoter, actor=user)
print("NEXOW_IDS=" + str(version.pk) + "," + str(dataset.pk))
"""


def test_a_dropped_live_event_is_recovered_from_the_rest_event_log(server, browser_context):
    """Every other progress event is dropped between the server and the page: the page sees
    the gaps in the sequence numbers, re-fetches the missing events from the REST log, and
    still shows every step and the finished run."""
    base = server["base"]
    output = subprocess.run(
        [PY, "manage.py", "shell", "-c", SEED_WATCHER.replace("PASSWORD", repr(PASSWORD))],
        cwd=ROOT, env=server["env"], check=True, capture_output=True, text=True).stdout
    version_id, dataset_id = next(line for line in output.splitlines()
                                  if line.startswith("NEXOW_IDS="))[10:].split(",")
    browser_context.clear_cookies()  # nobody signed in from an earlier test
    page = browser_context.new_page()
    dropped: list[int] = []
    refetches: list[str] = []
    page.on("request", lambda r: refetches.append(r.url) if "/events/?since=" in r.url else None)

    def lossy(ws):
        upstream = ws.connect_to_server()

        def forward(message):
            event = json.loads(message)
            # The first progress event and every even-numbered one after it: at least one
            # gap whatever the machine's speed.
            if event.get("type") == "simulation.progress" and (not dropped or event["seq"] % 2 == 0):
                dropped.append(event["seq"])
                return
            ws.send(message)

        upstream.on_message(forward)

    page.route_web_socket(re.compile(r"/ws/v1/orgs/"), lossy)
    # Runs before the page's own scripts: every event the page applies, in order.
    page.add_init_script("""
        window.__applied = [];
        document.addEventListener("nexow:simulation",
                                  (e) => window.__applied.push(e.detail.event.seq));
    """)
    page.goto(base + "/accounts/login/")
    page.fill("input[name=login]", "watcher@e2e.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/orgs/gaps/"))
    page.goto(f"{base}/orgs/gaps/simulations/new/?version={version_id}&dataset={dataset_id}")
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/simulations/\d+/$"))
    page.wait_for_selector("#sim-results [data-sim-done]", timeout=90_000)
    applied = page.evaluate("window.__applied")
    assert dropped, "the run reported progress and some of it was dropped"
    assert refetches, "the gaps were filled from the REST event log"
    # Every event was applied exactly once and in order, the dropped ones included.
    assert applied == list(range(applied[0], applied[-1] + 1)), applied
    assert set(dropped) <= set(applied)


SEED_TRADER = r"""
from allauth.account.models import EmailAddress
from accounts import services
from accounts.models import User
from trading.services import strategies
from trading.services.deployments import (broker_account_create, deployment_create,
                                          deployment_start)

user = User.objects.create_user(email="trader@e2e.example", password=PASSWORD)
EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
org = services.organization_create(name="Tick Fund", slug="ticks", actor=user)
sma = strategies.strategy_create(organization=org, actor=user, name="sma", kind="sma_cross")
version = strategies.version_create(strategy=sma, actor=user, params={"fast": 3, "slow": 8})
account = broker_account_create(organization=org, actor=user, name="paper", kind="paper",
                                mode="paper")
deployment = deployment_create(organization=org, actor=user, strategy_version=version,
                               broker_account=account, symbols=["BTC/USD"], name="fast bars",
                               config={"bar_seconds": 1, "warm_bars": 20, "lookback": 20})
deployment_start(deployment=deployment, actor=user)
print("NEXOW_IDS=" + str(deployment.pk))
"""


def test_deployment_rows_and_page_follow_the_live_stream(server, browser_context):
    """A running paper deployment on one-second bars, stepped by the server's beat: its row in
    the list and its own page show each new bar without reloading, over one WebSocket."""
    base = server["base"]
    output = subprocess.run(
        [PY, "manage.py", "shell", "-c", SEED_TRADER.replace("PASSWORD", repr(PASSWORD))],
        cwd=ROOT, env=server["env"], check=True, capture_output=True, text=True).stdout
    deployment_id = next(line for line in output.splitlines()
                         if line.startswith("NEXOW_IDS="))[10:]
    browser_context.clear_cookies()
    page = browser_context.new_page()
    # Runs before the page's own scripts: counts the sockets each page opens.
    page.add_init_script("""
        window.__sockets = 0;
        const Native = window.WebSocket;
        window.WebSocket = function (url, protocols) {
            window.__sockets += 1;
            return new Native(url, protocols);
        };
        window.WebSocket.OPEN = Native.OPEN;
    """)
    page.goto(base + "/accounts/login/")
    page.fill("input[name=login]", "trader@e2e.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/orgs/ticks/"))

    pages = {"/orgs/ticks/deployments/":
             f'[data-deployment-row][data-deployment="{deployment_id}"] [data-field="last-bar"]',
             f"/orgs/ticks/deployments/{deployment_id}/":
             '[data-deployment-page] [data-field="last-bar"]'}
    for path, last_bar in pages.items():
        page.goto(base + path)
        page.evaluate("window.__loaded = true")  # gone if the page reloads
        before = page.inner_text(last_bar)
        page.wait_for_function("([sel, text]) => document.querySelector(sel).innerText !== text",
                               arg=[last_bar, before], timeout=30_000)
        assert re.match(r"\d{4}-\d\d-\d\d", page.inner_text(last_bar))
        assert page.evaluate("window.__loaded") is True
        assert page.evaluate("window.__sockets") == 1  # one socket for the whole page
