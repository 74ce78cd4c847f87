"""Simulations over the API: creation with Idempotency-Key, limits (413, 429), tenant-checked
foreign keys, roles, cancel and re-run, results (trades, CSV, fills, equity), events ?since,
comparison, and the fair-share dispatcher."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.permissions import Role
from tests.fixtures_accounts import member, session_client
from trading.models import IdempotencyKey, Simulation
from trading.services import simulations

from .support import (
    finished_simulation,
    org_with_owner,
    queued_simulation,
    sma_version,
    synthetic_dataset,
)

pytestmark = pytest.mark.django_db


def _url(name, org, **kw):
    return reverse(f"trading-api:{name}", kwargs={"org_slug": org.slug, **kw})


@pytest.fixture
def setup():
    org, owner = org_with_owner()
    return org, owner, session_client(owner), sma_version(org, owner), \
        synthetic_dataset(org, owner, n_bars=400)


def _body(version, dataset, **extra):
    return {"strategy_version": version.pk, "dataset": dataset.pk, **extra}


def test_creating_a_simulation_queues_it_dispatches_it_and_audits_it(setup):
    org, owner, client, version, dataset = setup
    resp = client.post(_url("simulation-list", org), _body(version, dataset,
                                                          config={"cash": 5000}), format="json")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert (body["status"], body["size"], body["version_number"]) == ("queued", 400, 1)
    sim = Simulation.objects.get(pk=body["id"])
    assert sim.dispatched_at is not None  # a free slot: handed to the queue at once
    assert AuditEvent.objects.filter(organization=org, action="simulation.created",
                                     target_id=str(sim.pk)).exists()


def test_the_same_idempotency_key_and_body_replays_the_first_response(setup):
    org, owner, client, version, dataset = setup
    url, body = _url("simulation-list", org), _body(version, dataset)
    first = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Simulation.objects.filter(organization=org).count() == 1


def test_the_same_idempotency_key_with_another_body_is_a_422(setup):
    org, owner, client, version, dataset = setup
    url = _url("simulation-list", org)
    client.post(url, _body(version, dataset), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    other = client.post(url, _body(version, dataset, config={"cash": 1}), format="json",
                        HTTP_IDEMPOTENCY_KEY="k-2")
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert Simulation.objects.filter(organization=org).count() == 1


def test_a_key_whose_first_request_is_still_in_flight_is_a_409(setup):
    from trading.services.idempotency import request_fingerprint

    org, owner, client, version, dataset = setup
    url, body = _url("simulation-list", org), _body(version, dataset)
    IdempotencyKey.objects.create(organization=org, key="k-3", scope="simulation.create",
                                  request_hash=request_fingerprint(method="POST", path=url,
                                                                   body=body))
    resp = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert resp.status_code == 409 and resp["Retry-After"] == "1"
    assert Simulation.objects.filter(organization=org).count() == 0


def test_a_failed_request_releases_its_idempotency_key(setup):
    org, owner, client, version, dataset = setup
    url = _url("simulation-list", org)
    bad = client.post(url, _body(version, dataset, config={"cash": -5}), format="json",
                      HTTP_IDEMPOTENCY_KEY="k-4")
    assert bad.status_code == 400
    assert not IdempotencyKey.objects.filter(key="k-4").exists()


def test_a_run_larger_than_the_size_limit_is_a_413(setup, settings):
    org, owner, client, version, dataset = setup
    settings.NEXOW_SIM_MAX_SIZE = 399  # the dataset has 400 bars × 1 symbol
    resp = client.post(_url("simulation-list", org), _body(version, dataset), format="json")
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "too_large"


def test_too_many_active_runs_is_a_429_with_retry_after(setup, settings):
    org, owner, client, version, dataset = setup
    settings.NEXOW_SIM_MAX_ACTIVE_PER_ORG = 2
    url = _url("simulation-list", org)
    for _ in range(2):
        assert client.post(url, _body(version, dataset), format="json").status_code == 201
    resp = client.post(url, _body(version, dataset), format="json")
    assert resp.status_code == 429 and int(resp["Retry-After"]) > 0
    assert resp.json()["error"]["code"] == "throttled"


def test_another_tenants_version_or_dataset_in_the_body_reads_as_missing(setup):
    org, owner, client, version, dataset = setup
    other_org, other_owner = org_with_owner()
    other_version = sma_version(other_org, other_owner)
    other_dataset = synthetic_dataset(other_org, other_owner, n_bars=50)
    resp = client.post(_url("simulation-list", org), _body(other_version, other_dataset),
                       format="json")
    assert resp.status_code == 400
    assert set(resp.json()["error"]["fields"]) == {"strategy_version", "dataset"}


@pytest.mark.parametrize("role,status", [(Role.VIEWER, 403), (Role.COMPLIANCE, 403),
                                         (Role.ANALYST, 201)])
def test_starting_a_simulation_needs_simulations_write(setup, role, status):
    org, owner, client, version, dataset = setup
    resp = session_client(member(org, role)).post(_url("simulation-list", org),
                                                  _body(version, dataset), format="json")
    assert resp.status_code == status


def test_a_viewer_reads_results_but_cannot_cancel(setup):
    org, owner, client, version, dataset = setup
    sim = queued_simulation(org, owner, version=version, dataset=dataset)
    viewer = session_client(member(org, Role.VIEWER))
    assert viewer.get(_url("simulation-detail", org, pk=sim.pk)).status_code == 200
    assert viewer.post(_url("simulation-cancel", org, pk=sim.pk)).status_code == 403


def test_cancel_then_cancel_again_is_a_409(setup):
    org, owner, client, version, dataset = setup
    sim = queued_simulation(org, owner, version=version, dataset=dataset)
    first = client.post(_url("simulation-cancel", org, pk=sim.pk))
    assert first.status_code == 200 and first.json()["status"] == "cancelled"
    assert client.post(_url("simulation-cancel", org, pk=sim.pk)).status_code == 409


def test_rerun_creates_a_new_simulation_of_the_same_version(setup):
    org, owner, client, version, dataset = setup
    sim = finished_simulation(org, owner, version=version, dataset=dataset)
    resp = client.post(_url("simulation-rerun", org, pk=sim.pk))
    assert resp.status_code == 201
    body = resp.json()
    assert body["id"] != sim.pk and body["rerun_of"] == sim.pk
    assert body["strategy_version"] == version.pk and body["status"] == "queued"


def test_trades_paginate_and_match_the_csv(setup):
    org, owner, client, version, dataset = setup
    sim = finished_simulation(org, owner, version=version, dataset=dataset)
    page = client.get(_url("simulation-trades", org, pk=sim.pk), {"page_size": 2}).json()
    assert page["count"] == sim.n_trades > 2 and len(page["results"]) == 2
    rows = list(csv.DictReader(io.StringIO(b"".join(
        client.get(_url("simulation-trades-csv", org, pk=sim.pk)).streaming_content).decode())))
    assert len(rows) == sim.n_trades
    assert float(rows[0]["pnl"]) == page["results"][0]["pnl"]


def test_results_of_an_unfinished_run_are_a_409(setup):
    org, owner, client, version, dataset = setup
    sim = queued_simulation(org, owner, version=version, dataset=dataset)
    assert client.get(_url("simulation-trades", org, pk=sim.pk)).status_code == 409


def test_the_equity_curve_is_downsampled_on_request_keeping_both_ends(setup):
    org, owner, client, version, dataset = setup
    sim = finished_simulation(org, owner, version=version, dataset=dataset)
    full = client.get(_url("simulation-equity", org, pk=sim.pk)).json()
    small = client.get(_url("simulation-equity", org, pk=sim.pk), {"points": 10}).json()
    assert full["n_points"] == len(full["equity"]) == 400
    assert len(small["equity"]) == 10
    assert small["equity"][0] == full["equity"][0] and small["equity"][-1] == full["equity"][-1]
    assert small["timestamps"][-1] == full["timestamps"][-1]


def test_fills_are_listed(setup):
    org, owner, client, version, dataset = setup
    sim = finished_simulation(org, owner, version=version, dataset=dataset)
    fills = client.get(_url("simulation-fills", org, pk=sim.pk), {"page_size": 1000}).json()
    # Every closed round trip has an entry and an exit fill; an open one has only its entry.
    closed = sim.trades.filter(exit_time__isnull=False).count()
    assert fills["count"] == 2 * closed + (sim.n_trades - closed)


def test_events_since_a_sequence_number_return_only_later_events(setup):
    org, owner, client, version, dataset = setup
    sim = finished_simulation(org, owner, version=version, dataset=dataset)
    all_events = client.get(_url("simulation-events", org, pk=sim.pk)).json()
    later = client.get(_url("simulation-events", org, pk=sim.pk), {"since": 2}).json()
    assert [e["seq"] for e in later["events"]] == [e["seq"] for e in all_events["events"]][2:]
    assert later["last_seq"] == all_events["events"][-1]["seq"]
    assert later["events"][-1]["type"] == "simulation.completed"


def test_compare_lines_up_the_metrics_of_several_simulations(setup):
    org, owner, client, version, dataset = setup
    a = finished_simulation(org, owner, version=version, dataset=dataset)
    b = finished_simulation(org, owner, version=sma_version(org, owner, params={"fast": 3,
                                                                                "slow": 9}),
                            dataset=dataset)
    body = client.get(_url("simulation-compare", org), {"ids": f"{b.pk},{a.pk}"}).json()
    assert [s["id"] for s in body["simulations"]] == [b.pk, a.pk]
    assert body["metrics"]["n_trades"] == [b.metrics["n_trades"], a.metrics["n_trades"]]


def test_the_dispatcher_admits_at_most_n_runs_per_organisation_and_is_fair(settings):
    settings.NEXOW_SIM_MAX_RUNNING_PER_ORG = 2
    busy, busy_owner = org_with_owner()
    quiet, quiet_owner = org_with_owner()
    version, dataset = sma_version(busy, busy_owner), synthetic_dataset(busy, busy_owner,
                                                                        n_bars=100)
    flood = [queued_simulation(busy, busy_owner, version=version, dataset=dataset)
             for _ in range(8)]
    late = queued_simulation(quiet, quiet_owner, version=sma_version(quiet, quiet_owner),
                             dataset=synthetic_dataset(quiet, quiet_owner, n_bars=100))
    dispatched = set(Simulation.objects.filter(dispatched_at__isnull=False)
                     .values_list("id", flat=True))
    # The busy organisation holds only its two slots; the quiet one was admitted at once.
    assert dispatched == {flood[0].pk, flood[1].pk, late.pk}
    # When one of the busy organisation's runs finishes, its next queued run is admitted.
    simulations.simulation_execute(simulation_id=flood[0].pk, task_id="t")
    dispatched = set(Simulation.objects.filter(organization=busy, dispatched_at__isnull=False,
                                               status="queued").values_list("id", flat=True))
    assert dispatched == {flood[1].pk, flood[2].pk}


def test_the_openapi_schema_documents_the_trading_routes_and_their_errors(client):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    create = schema["paths"]["/api/v1/orgs/{org_slug}/simulations/"]["post"]
    assert {"201", "400", "403", "404", "409", "413", "422", "429"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert "/api/v1/orgs/{org_slug}/datasets/{id}/export.{fmt}" in schema["paths"]


def test_the_simulation_list_costs_the_same_queries_for_one_or_many_rows(setup):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    org, owner, client, version, dataset = setup
    url = _url("simulation-list", org)
    queued_simulation(org, owner, version=version, dataset=dataset)
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    for _ in range(4):
        queued_simulation(org, owner, version=version, dataset=dataset)
    with CaptureQueriesContext(connection) as five:
        assert client.get(url).json()["count"] == 5
    assert len(five.captured_queries) == len(one.captured_queries)
