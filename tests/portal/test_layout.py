"""The shared layout: navigation, themes, assets from installed packages, no inline scripts."""

from __future__ import annotations

import re
from pathlib import Path

import plotly
import pytest
from django.contrib.staticfiles import finders

ROOT = Path(__file__).resolve().parents[2]


def test_navigation_links_every_section_of_the_organisation(owner_web, org):
    html = owner_web.get(f"/orgs/{org.slug}/dashboard/").content.decode()
    nav = html[html.index('id="portal-nav"'):html.index("</nav>", html.index('id="portal-nav"'))]
    for label, href in [("Dashboard", "/orgs/alpha/dashboard/"),
                        ("Market data", "/orgs/alpha/market-data/"),
                        ("Strategies", "/orgs/alpha/strategies/"),
                        ("Simulations", "/orgs/alpha/simulations/"),
                        ("Deployments", "/orgs/alpha/deployments/"),
                        ("Risk", "/orgs/alpha/risk/"), ("Reports", "/orgs/alpha/reports/"),
                        ("Members", "/orgs/alpha/members/"), ("API keys", "/orgs/alpha/api-keys/"),
                        ("Audit log", "/orgs/alpha/audit/"), ("Settings", "/orgs/alpha/settings/")]:
        assert f'href="{href}"' in nav and label in nav, label
    # Deployments come right after Simulations.
    assert nav.index("/orgs/alpha/simulations/") < nav.index("/orgs/alpha/deployments/") \
        < nav.index("/orgs/alpha/risk/")
    assert re.search(r'href="/orgs/alpha/dashboard/" aria-current="page"', nav)


def test_audit_link_is_hidden_from_roles_without_audit_access(viewer_web, org):
    html = viewer_web.get(f"/orgs/{org.slug}/dashboard/").content.decode()
    assert "/orgs/alpha/audit/" not in html


def test_every_page_loads_theme_and_portal_scripts_but_no_inline_script(owner_web, finished, org):
    response = owner_web.get(f"/orgs/{org.slug}/simulations/{finished.pk}/")
    html = response.content.decode()
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts, "the page has scripts"
    for attrs in scripts:
        # Either a file of our own origin or inert JSON data for the charts.
        assert 'src="/static/' in attrs or 'type="application/json"' in attrs, attrs
    assert 'src="/static/nexow/theme.js"' in html
    assert 'src="/static/django_htmx/htmx-2.min.js"' in html
    assert 'src="/static/vendor/plotly.min.js"' in html
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_plotly_is_served_from_the_installed_package_not_from_the_repository():
    found = finders.find("vendor/plotly.min.js")
    assert found == str(Path(plotly.__file__).parent / "package_data" / "plotly.min.js")
    copies = [p for p in ROOT.rglob("plotly*.min.js")
              if ".venv" not in p.parts and "var" not in p.parts]
    assert copies == []


@pytest.mark.django_db
def test_static_plotly_url_answers_with_the_bundle(client):
    response = client.get("/static/vendor/plotly.min.js")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body == (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()


def test_flash_message_appears_once_after_an_action(owner_web, org, version, dataset):
    response = owner_web.post(f"/orgs/{org.slug}/simulations/new/", {
        "strategy_version": version.pk, "dataset": dataset.pk, "cash": "100000"}, follow=True)
    html = response.content.decode()
    assert 'class="message success"' in html and "queued" in html
    again = owner_web.get(response.redirect_chain[-1][0]).content.decode()
    assert 'class="message success"' not in again


def test_accounts_pages_render_inside_the_portal_layout(owner_web, org):
    html = owner_web.get(f"/orgs/{org.slug}/members/").content.decode()
    assert 'id="portal-nav"' in html
    assert 'href="/orgs/alpha/members/" aria-current="page"' in html


def test_refused_action_explains_itself_in_the_layout(viewer_web, org):
    response = viewer_web.get(f"/orgs/{org.slug}/simulations/new/")
    html = response.content.decode()
    assert response.status_code == 403
    assert "<h1>Not allowed</h1>" in html and "Your role (viewer) does not allow this." in html
    assert 'id="portal-nav"' in html
