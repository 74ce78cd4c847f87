"""The portal's live client (`nexow.orgStream` in portal.js) as the analyses pages use it, in
Chromium against a page served by the test: the WebSocket is a stand-in the test drives and the
REST answers are routed, so each rule is exercised on purpose — in-order events apply, a gap
re-reads the analysis row, an old event is ignored, the final event finishes the row.
"""

from __future__ import annotations

import json
import shutil
import tempfile

import pytest

from tests.support.procs import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ORIGIN = "http://nexow.test"
STATIC = ROOT / "nexow_site" / "static" / "nexow"

PAGE = """<!doctype html><html><head>
<script>
  /* A WebSocket the test drives: window.__sockets holds every one the page opened. */
  window.__sockets = [];
  window.WebSocket = function (url) {
    this.url = url; this.readyState = 0; this.sent = []; this.listeners = {};
    window.__sockets.push(this);
  };
  window.WebSocket.OPEN = 1;
  window.WebSocket.prototype.addEventListener = function (type, fn) {
    (this.listeners[type] = this.listeners[type] || []).push(fn);
  };
  window.WebSocket.prototype.send = function (data) { this.sent.push(data); };
  window.WebSocket.prototype.fire = function (type, detail) {
    if (type === "open") { this.readyState = 1; }
    (this.listeners[type] || []).forEach(function (fn) { fn(detail || {}); });
  };
</script>
<script src="/static/nexow/portal.js" defer></script>
<script src="/static/nexow/analysis.js" defer></script>
</head><body>
<div data-analysis="7" data-org="acme" data-seq="0" data-total="4" data-status="running">
  <progress max="100" value="0"></progress>
  <span data-progress-label>0%</span>
  <span data-children-label>0/4</span>
  <span data-analysis-status class="badge">running</span>
</div>
</body></html>"""


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="nexow-chromium-")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True,
            args=["--headless=new", "--no-sandbox", "--disable-gpu"])
        page = context.new_page()
        page.route(ORIGIN + "/analyses/", lambda route: route.fulfill(
            body=PAGE, content_type="text/html"))
        page.route(ORIGIN + "/static/nexow/*.js", lambda route: route.fulfill(
            body=(STATIC / route.request.url.rsplit("/", 1)[1]).read_text(),
            content_type="text/javascript"))
        yield page
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


def _event(page, message: dict) -> None:
    page.evaluate("m => window.__sockets[0].fire('message', {data: JSON.stringify(m)})", message)


def _row(page) -> dict:
    return page.evaluate("""() => {
        const row = document.querySelector("[data-analysis='7']");
        return {label: row.querySelector("[data-progress-label]").textContent,
                children: row.querySelector("[data-children-label]").textContent,
                status: row.getAttribute("data-status")};
    }""")


def test_analysis_progress_follows_events_fills_a_gap_from_the_row_and_finishes(page):
    reads: list[str] = []

    def analysis_row(route):
        reads.append(route.request.url)
        route.fulfill(content_type="application/json", body=json.dumps(
            {"id": 7, "status": "running", "n_done": 3, "n_failed": 0, "n_children": 4}))

    page.route(ORIGIN + "/api/v1/orgs/acme/analyses/7/", analysis_row)
    page.goto(ORIGIN + "/analyses/")
    assert page.evaluate("window.__sockets.length") == 1
    assert page.evaluate("window.__sockets[0].url").endswith("/ws/v1/orgs/acme/")
    page.evaluate("window.__sockets[0].fire('open')")  # connecting catches up from the row
    page.wait_for_function("document.querySelector('[data-progress-label]').textContent === '75%'")
    assert len(reads) == 1
    # Analysis events reach the organisation's group: nothing is subscribed to.
    assert page.evaluate("window.__sockets[0].sent") == []

    stream = {"stream": "analysis.7", "analysis": 7, "total": 4, "failed": 0}
    _event(page, {**stream, "type": "analysis.progress", "seq": 2, "done": 2})  # already seen
    assert _row(page)["label"] == "75%"
    _event(page, {**stream, "type": "analysis.progress", "seq": 4, "done": 4})
    assert _row(page) == {"label": "100%", "children": "4/4", "status": "running"}

    _event(page, {**stream, "type": "analysis.progress", "seq": 9, "done": 4})  # a gap
    for _ in range(100):  # the page re-reads the row (answered by the route above)
        if len(reads) == 2:
            break
        page.wait_for_timeout(50)
    assert len(reads) == 2
    page.wait_for_timeout(100)  # the answer is applied: its seq (3) is behind, nothing moves
    assert _row(page)["label"] == "100%"

    _event(page, {**stream, "type": "analysis.completed", "seq": 5, "done": 4})
    assert _row(page) == {"label": "100%", "children": "4/4", "status": "succeeded"}
    # Finished: later events of the analysis are no longer applied.
    _event(page, {**stream, "type": "analysis.failed", "seq": 6, "done": 4})
    assert _row(page)["status"] == "succeeded"
