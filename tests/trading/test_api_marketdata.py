"""Market data over the API: instruments, CSV/Parquet import with a validation report, synthetic
datasets, bar queries with resampling, exports."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.permissions import Role
from tests.fixtures_accounts import member, session_client
from trading.models import Bar, Dataset, Instrument

from .support import org_with_owner, synthetic_dataset

pytestmark = pytest.mark.django_db

GOOD_CSV = (
    "timestamp,open,high,low,close,volume\n"
    "2024-01-01T00:00:00Z,10.00,10.50,9.90,10.20,100\n"
    "2024-01-01T00:01:00Z,10.20,10.40,10.10,10.30,120\n"
    # 00:02 and 00:03 are missing: one gap of two bars
    "2024-01-01T00:04:00Z,10.30,10.60,10.20,10.50,90\n"
    "2024-01-01T00:05:00Z,10.50,10.70,10.40,10.60,80\n"
)
BAD_CSV = (
    "timestamp,open,high,low,close,volume\n"
    "2024-01-01T00:00:00Z,10.00,10.50,9.90,10.20,100\n"   # line 2: fine
    "2024-01-01T00:01:00Z,10.20,abc,10.10,10.30,120\n"    # line 3: high is not a number
    "2024-01-01T00:01:00Z,10.30,10.60,10.20,10.50,90\n"   # line 4: duplicate timestamp
    "2024-01-01T00:03:00Z,10.50,10.40,10.40,10.60,80\n"   # line 5: high below close
)


def _url(name, org, **kw):
    return reverse(f"trading-api:{name}", kwargs={"org_slug": org.slug, **kw})


def _upload(client, org, content: bytes, filename: str, name: str = "ds"):
    return client.post(_url("dataset-import", org),
                       {"name": name, "file": SimpleUploadedFile(filename, content)},
                       format="multipart")


def test_a_good_csv_imports_every_row_and_reports_the_gap():
    org, owner = org_with_owner()
    resp = _upload(session_client(owner), org, GOOD_CSV.encode(), "aapl.csv")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["dataset"]["rows"] == 4 and body["dataset"]["symbols"] == ["AAPL"]
    assert body["dataset"]["bar_seconds"] == 60  # median spacing of 1, 1, 3, 1 minutes
    assert body["report"]["gaps"] == [{"after": "2024-01-01T00:01:00+00:00",
                                       "before": "2024-01-01T00:04:00+00:00",
                                       "missing_bars": 2}]
    assert Bar.objects.filter(dataset_id=body["dataset"]["id"]).count() == 4


def test_a_rejected_file_imports_nothing_and_names_every_bad_row_by_line_and_column():
    org, owner = org_with_owner()
    instruments_before = Instrument.objects.count()
    resp = _upload(session_client(owner), org, BAD_CSV.encode(), "bad.csv")
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "invalid_file"
    found = {(e["line"], e["column"]) for e in error["report"]["errors"]}
    assert found == {(3, "high"), (4, "timestamp"), (5, "high")}
    assert error["report"]["duplicates"][0]["line"] == 4
    assert "line 3, column high" in " ".join(error["fields"]["file"])
    assert Dataset.objects.count() == 0 and Bar.objects.count() == 0
    assert Instrument.objects.count() == instruments_before


def test_a_parquet_file_with_several_symbols_imports(tmp_path):
    org, owner = org_with_owner()
    frame = pd.DataFrame({
        "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"] * 2, utc=True),
        "symbol": ["AAA", "AAA", "BBB", "BBB"],
        "open": [1.0, 1.1, 5.0, 5.1], "high": [1.2, 1.2, 5.2, 5.3],
        "low": [0.9, 1.0, 4.9, 5.0], "close": [1.1, 1.15, 5.1, 5.2],
        "volume": [10.0, 11.0, 12.0, 13.0]})
    buf = io.BytesIO()
    frame.to_parquet(buf)
    resp = _upload(session_client(owner), org, buf.getvalue(), "two.parquet")
    assert resp.status_code == 201, resp.content
    assert resp.json()["dataset"]["symbols"] == ["AAA", "BBB"]
    assert resp.json()["dataset"]["rows"] == 4


def test_bars_are_queried_and_resampled():
    org, owner = org_with_owner()
    ds = synthetic_dataset(org, owner, n_bars=120, symbol="SYN")  # 120 one-minute bars
    client = session_client(owner)
    raw = client.get(_url("dataset-bars", org, pk=ds.pk), {"limit": 5}).json()
    assert raw["count"] == 120 and len(raw["results"]) == 5
    hourly = client.get(_url("dataset-bars", org, pk=ds.pk), {"resample": "1h"}).json()
    assert hourly["count"] == 2  # 120 minutes from 00:00 = two hourly buckets
    first_hour = client.get(_url("dataset-bars", org, pk=ds.pk),
                            {"limit": 60}).json()["results"]
    assert hourly["results"][0]["open"] == first_hour[0]["open"]
    assert hourly["results"][0]["close"] == first_hour[59]["close"]
    assert hourly["results"][0]["high"] == max(b["high"] for b in first_hour)
    assert hourly["results"][0]["volume"] == sum(b["volume"] for b in first_hour)


def test_a_dataset_exports_as_csv_json_and_parquet_with_the_same_bars():
    org, owner = org_with_owner()
    ds = synthetic_dataset(org, owner, n_bars=30, symbol="SYN")
    client = session_client(owner)
    as_json = client.get(_url("dataset-export", org, pk=ds.pk, fmt="json")).json()
    closes = [b["close"] for b in as_json["bars"]]
    csv_resp = client.get(_url("dataset-export", org, pk=ds.pk, fmt="csv"))
    assert csv_resp["Content-Type"] == "text/csv"
    assert pd.read_csv(io.BytesIO(csv_resp.content))["close"].tolist() == closes
    pq_resp = client.get(_url("dataset-export", org, pk=ds.pk, fmt="parquet"))
    assert pd.read_parquet(io.BytesIO(pq_resp.content))["close"].tolist() == closes
    assert len(closes) == 30


def test_synthetic_datasets_are_deterministic_for_a_seed():
    org, owner = org_with_owner()
    client = session_client(owner)
    for name in ("one", "two"):
        resp = client.post(_url("dataset-synthetic", org), {
            "name": name, "generator": "gbm", "n_bars": 50, "seed": 3}, format="json")
        assert resp.status_code == 201
    one, two = (list(Bar.objects.filter(dataset__name=n).order_by("ts")
                     .values_list("close", flat=True)) for n in ("one", "two"))
    assert one == two and len(one) == 50


def test_platform_instruments_are_listed_for_everyone_and_read_only():
    org, owner = org_with_owner()
    demo = Instrument.objects.create(organization=None, symbol="DEMO", calendar="24/7")
    client = session_client(owner)
    listed = client.get(_url("instrument-list", org)).json()["results"]
    assert [i["symbol"] for i in listed] == ["DEMO"] and listed[0]["platform"] is True
    resp = client.patch(_url("instrument-detail", org, pk=demo.pk), {"sector": "x"},
                        format="json")
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "read_only"


def test_instrument_create_validates_and_is_audited():
    from accounts.models import AuditEvent

    org, owner = org_with_owner()
    client = session_client(owner)
    bad = client.post(_url("instrument-list", org), {"symbol": "X", "calendar": "sometimes"},
                      format="json")
    assert bad.status_code == 400 and "calendar" in bad.json()["error"]["fields"]
    ok = client.post(_url("instrument-list", org), {"symbol": "BTCUSD", "asset_class": "crypto",
                                                    "calendar": "24/7", "tick_size": "0.5"},
                     format="json")
    assert ok.status_code == 201 and ok.json()["tick_size"] == "0.5000000000"
    assert AuditEvent.objects.filter(organization=org, action="instrument.created").count() == 1


@pytest.mark.parametrize("role,status", [(Role.VIEWER, 403), (Role.TRADER, 403),
                                         (Role.ADMIN, 201)])
def test_only_roles_with_market_data_write_may_generate_datasets(role, status):
    org, _ = org_with_owner()
    client = session_client(member(org, role))
    resp = client.post(_url("dataset-synthetic", org), {"name": f"by-{role}", "n_bars": 10},
                       format="json")
    assert resp.status_code == status


def test_demo_datasets_are_platform_wide_listed_for_every_tenant_and_read_only():
    from django.core.management import call_command

    call_command("seed_market_data", stdout=io.StringIO())
    org, owner = org_with_owner()
    client = session_client(owner)
    listed = client.get(_url("dataset-list", org)).json()["results"]
    names = sorted(d["name"] for d in listed if d["platform"])
    assert names == ["Demo ACME daily", "Demo BTCUSD 1m", "Demo pair X/Y 1h"]
    pair = next(d for d in listed if d["name"] == "Demo pair X/Y 1h")
    assert pair["symbols"] == ["DEMOX", "DEMOY"] and pair["rows"] == 2 * 4_380
    resp = client.delete(_url("dataset-detail", org, pk=pair["id"]))
    assert resp.status_code == 403 and Dataset.objects.filter(pk=pair["id"]).exists()
