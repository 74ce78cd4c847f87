"""Health, readiness, the API root, the error envelope, the schema and its offline docs."""

import json
import re

import pytest

from nexow_site import health


def test_healthz_answers_while_the_process_is_alive(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_every_dependency(client):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "cache", "broker", "channel_layer"}
    assert body["down"] == []


@pytest.mark.django_db
def test_readyz_names_a_dependency_that_does_not_answer_in_time(client, monkeypatch):
    import time

    monkeypatch.setitem(health.CHECKS, "broker", lambda: time.sleep(10))
    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 0.5)
    started = time.monotonic()
    response = health.run_checks(timeout=0.5)
    assert time.monotonic() - started < 2
    assert response["broker"].startswith("down: no answer within 0.5s")
    assert response["database"] == "ok"


def test_api_root_links_schema_and_docs(client):
    body = client.get("/api/v1/").json()
    assert body["version"] == "v1"
    assert body["schema"].endswith("/api/schema/")
    assert body["docs"].endswith("/api/docs/")


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing/", "/api/nothing-here"])
def test_unknown_api_route_is_a_json_404_envelope(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}


def test_openapi_schema_describes_the_api(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["info"]["title"] == "Nexow API"
    assert "/api/v1/" in schema["paths"]


def test_api_docs_are_served_without_any_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, "the docs page loads its scripts and styles"
    assert all(not s.startswith(("http://", "https://", "//")) for s in sources), sources
    assert any("swagger-ui" in s for s in sources)
    # and the assets really are served locally
    script = next(s for s in sources if s.endswith("swagger-ui-bundle.js"))
    assert client.get(script).status_code == 200


def test_every_response_carries_a_request_id_and_echoes_a_valid_one(client):
    mine = "abcdef0123456789"
    assert client.get("/healthz", HTTP_X_REQUEST_ID=mine)["X-Request-ID"] == mine
    generated = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


def test_a_value_the_database_refuses_is_a_400_not_a_server_error(rf):
    from django.db import DataError

    from nexow_site.errors import api_exception_handler

    response = api_exception_handler(DataError("A string literal cannot contain NUL"), {})
    assert response.status_code == 400
    assert response.data["error"]["code"] == "invalid"
