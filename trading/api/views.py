"""Trading API views: instruments, datasets, strategies and versions, simulations, analyses.

Thin: parse with an input serializer, call a service or selector, render with an output
serializer. The organisation, the caller's scopes and the tenant filter come from
`accounts.api.base`; instruments and datasets also show the platform's read-only demo rows.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.api.base import TenantGenericViewSet
from nexow_site.errors import ApplicationError
from trading import selectors
from trading.api import serializers as s
from trading.engine.data import iso_timestamps, write_csv, write_parquet
from trading.engine.strategies import list_strategies
from trading.models import (
    Analysis,
    Dataset,
    Instrument,
    RunStatus,
    Simulation,
    Strategy,
    StrategyVersion,
)
from trading.services import analyses as analysis_services
from trading.services import marketdata as md_services
from trading.services import simulations as sim_services
from trading.services import strategies as strategy_services
from trading.services.idempotency import idempotent_call, request_fingerprint

_NO_CONTENT = OpenApiResponse(description="Deleted; no content.")
MARKET = {"GET": "market_data:read", "POST": "market_data:write", "PATCH": "market_data:write",
          "DELETE": "market_data:write"}
STRATEGIES = {"GET": "strategies:read", "POST": "strategies:write", "PATCH": "strategies:write",
              "DELETE": "strategies:write"}
SIMULATIONS = {"GET": "simulations:read", "POST": "simulations:write"}


def _valid(serializer_class, data, context=None, partial=False) -> dict:
    ser = serializer_class(data=data, context=context or {}, partial=partial)
    ser.is_valid(raise_exception=True)
    return ser.validated_data


PLATFORM_ROWS_REASON = ("platform demo rows (organization NULL) are readable by every tenant; "
                        "the filter still admits no other organisation's rows")


def _visible(view) -> QuerySet:
    qs = view.get_base_queryset()
    if not hasattr(view, "organization"):
        return qs.none()  # schema generation
    return qs.filter(selectors.visible(view.organization))


# --- instruments ---------------------------------------------------------------------------------

class InstrumentViewSet(TenantGenericViewSet):
    required_scopes = MARKET
    unscoped_queryset_reason = PLATFORM_ROWS_REASON
    queryset = Instrument.objects.all()
    serializer_class = s.InstrumentOutSerializer
    extra_error_codes = ("409",)

    def get_queryset(self) -> QuerySet:
        return _visible(self)

    @extend_schema(summary="List instruments (yours and the platform's demo instruments)",
                   responses=s.InstrumentOutSerializer(many=True))
    def list(self, request, org_slug: str):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.InstrumentOutSerializer(page, many=True).data)

    @extend_schema(summary="Create an instrument", request=s.InstrumentInSerializer,
                   responses={201: s.InstrumentOutSerializer})
    def create(self, request, org_slug: str):
        data = _valid(s.InstrumentInSerializer, request.data)
        obj = md_services.instrument_create(organization=self.organization, actor=request.user,
                                            data=data, request=request)
        return Response(s.InstrumentOutSerializer(obj).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Get an instrument")
    def retrieve(self, request, org_slug: str, pk: int):
        return Response(s.InstrumentOutSerializer(self.get_object()).data)

    @extend_schema(summary="Change an instrument (platform instruments are read-only)",
                   request=s.InstrumentUpdateSerializer, responses=s.InstrumentOutSerializer)
    def partial_update(self, request, org_slug: str, pk: int):
        data = _valid(s.InstrumentUpdateSerializer, request.data, partial=True)
        obj = md_services.instrument_update(instrument=self.get_object(), actor=request.user,
                                            data=data, request=request)
        return Response(s.InstrumentOutSerializer(obj).data)

    @extend_schema(summary="Delete an instrument without market data", responses={204: _NO_CONTENT})
    def destroy(self, request, org_slug: str, pk: int):
        md_services.instrument_delete(instrument=self.get_object(), actor=request.user,
                                      request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- datasets ------------------------------------------------------------------------------------

def _instrument_defaults(data: dict) -> dict:
    return {k: data[k] for k in ("asset_class", "calendar", "currency") if data.get(k)}


class DatasetViewSet(TenantGenericViewSet):
    required_scopes = MARKET
    unscoped_queryset_reason = PLATFORM_ROWS_REASON
    queryset = Dataset.objects.prefetch_related("instruments")
    serializer_class = s.DatasetOutSerializer
    extra_error_codes = ("409", "413")

    def get_queryset(self) -> QuerySet:
        return _visible(self)

    @extend_schema(summary="List datasets (yours and the platform's demo datasets)",
                   responses=s.DatasetOutSerializer(many=True))
    def list(self, request, org_slug: str):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.DatasetOutSerializer(page, many=True).data)

    @extend_schema(summary="Get a dataset")
    def retrieve(self, request, org_slug: str, pk: int):
        return Response(s.DatasetOutSerializer(self.get_object()).data)

    @extend_schema(summary="Delete a dataset and its bars", responses={204: _NO_CONTENT})
    def destroy(self, request, org_slug: str, pk: int):
        md_services.dataset_delete(dataset=self.get_object(), actor=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Import a CSV or Parquet bar file as a new dataset",
        description="Columns timestamp, open, high, low, close, volume and optionally symbol. "
                    "The whole file is validated first; a file with any bad row imports "
                    "nothing and the 400 response lists every rejected row by line and column.",
        request={"multipart/form-data": s.DatasetImportSerializer},
        responses={201: s.DatasetImportResultSerializer,
                   400: OpenApiResponse(description="Rejected file: error envelope whose "
                                                    "fields.report holds the validation report.")})
    def import_file(self, request, org_slug: str):
        data = _valid(s.DatasetImportSerializer, request.data)
        dataset, report = md_services.dataset_import(
            organization=self.organization, actor=request.user, name=data["name"],
            upload=data["file"], symbol=data.get("symbol"),
            instrument_defaults=_instrument_defaults(data), request=request)
        if dataset is None:
            lines = [f"line {e['line']}, column {e['column'] or '-'}: {e['message']}"
                     for e in report["errors"]]
            exc = ApplicationError(f"The file was rejected: {len(report['errors'])} bad "
                                   "value(s); nothing was imported.",
                                   code="invalid_file", fields={"file": lines})
            response = Response({"error": {"code": exc.code, "message": exc.message,
                                           "fields": exc.fields, "report": report}},
                                status=status.HTTP_400_BAD_REQUEST)
            return response
        return Response({"dataset": s.DatasetOutSerializer(dataset).data, "report": report},
                        status=status.HTTP_201_CREATED)

    @extend_schema(summary="Generate a synthetic dataset (seeded, deterministic)",
                   request=s.DatasetSyntheticSerializer, responses={201: s.DatasetOutSerializer})
    def synthetic(self, request, org_slug: str):
        data = _valid(s.DatasetSyntheticSerializer, request.data)
        dataset = md_services.dataset_generate(
            organization=self.organization, actor=request.user, name=data["name"],
            generator=data["generator"], n_bars=data["n_bars"], seed=data["seed"],
            options=data.get("options"), request=request)
        return Response(s.DatasetOutSerializer(dataset).data, status=status.HTTP_201_CREATED)

    def _bars(self, request, symbols: list[str] | None):
        dataset = self.get_object()
        start = _parse_dt(request.query_params.get("start"), "start")
        end = _parse_dt(request.query_params.get("end"), "end")
        rule = request.query_params.get("resample") or None
        try:
            return dataset, selectors.dataset_bars(dataset=dataset, symbols=symbols, start=start,
                                                   end=end, resample_rule=rule), rule
        except (ValueError, KeyError) as exc:
            raise ApplicationError(str(exc).strip("'\""), fields={"query": [str(exc)]}) from exc

    @extend_schema(
        summary="Query bars of one symbol, optionally resampled",
        parameters=[OpenApiParameter("symbol", str), OpenApiParameter("start", OpenApiTypes.DATETIME),
                    OpenApiParameter("end", OpenApiTypes.DATETIME),
                    OpenApiParameter("resample", str, description="1min, 5min, 15min, 30min, "
                                                                  "1h, 4h or 1d"),
                    OpenApiParameter("offset", int), OpenApiParameter("limit", int)],
        responses=s.BarsPageSerializer)
    def bars(self, request, org_slug: str, pk: int):
        symbol = request.query_params.get("symbol")
        dataset, bars, rule = self._bars(request, [symbol] if symbol else None)
        if bars.n_symbols > 1:
            raise ApplicationError("This dataset has several symbols; name one.",
                                   fields={"symbol": [f"One of: {', '.join(bars.symbols)}."]})
        offset = _int_param(request, "offset", 0, 0, 10**12)
        limit = _int_param(request, "limit", 1000, 1, 10_000)
        sl = slice(offset, offset + limit)
        ts = iso_timestamps(bars.timestamps[sl]) if bars.n_bars else []
        rows = [{"ts": t, "open": float(o), "high": float(h), "low": float(lo),
                 "close": float(c), "volume": float(v)}
                for t, o, h, lo, c, v in zip(ts, bars.open[sl, 0], bars.high[sl, 0],
                                             bars.low[sl, 0], bars.close[sl, 0],
                                             bars.volume[sl, 0], strict=True)]
        return Response({"symbol": bars.symbols[0], "resample": rule, "count": bars.n_bars,
                         "offset": offset, "results": rows})

    @extend_schema(summary="Export a dataset's bars as CSV, JSON or Parquet",
                   parameters=[OpenApiParameter("fmt", str, OpenApiParameter.PATH,
                                                enum=["csv", "json", "parquet"]),
                               OpenApiParameter("resample", str)],
                   responses={(200, "text/csv"): OpenApiTypes.BINARY,
                              (200, "application/json"): OpenApiTypes.OBJECT,
                              (200, "application/vnd.apache.parquet"): OpenApiTypes.BINARY})
    def export(self, request, org_slug: str, pk: int, fmt: str):
        if fmt not in ("csv", "json", "parquet"):
            raise ApplicationError("Unknown export format.",
                                   fields={"format": ["csv, json or parquet."]})
        dataset, bars, _ = self._bars(request, None)
        stem = f"{dataset.name}".replace(" ", "_").replace("/", "_") or f"dataset-{dataset.pk}"
        if fmt == "json":
            ts = iso_timestamps(bars.timestamps)
            body = {"dataset": dataset.pk, "symbols": bars.symbols, "bars": [
                {"symbol": sym, "ts": ts[i], "open": float(bars.open[i, j]),
                 "high": float(bars.high[i, j]), "low": float(bars.low[i, j]),
                 "close": float(bars.close[i, j]), "volume": float(bars.volume[i, j])}
                for j, sym in enumerate(bars.symbols) for i in range(bars.n_bars)]}
            return Response(body)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"export.{fmt}"
            (write_csv if fmt == "csv" else write_parquet)(bars, path)
            content = path.read_bytes()
        ctype = "text/csv" if fmt == "csv" else "application/vnd.apache.parquet"
        response = HttpResponse(content, content_type=ctype)
        response["Content-Disposition"] = f'attachment; filename="{stem}.{fmt}"'
        return response


def _parse_dt(value: str | None, name: str):
    if not value:
        return None
    from rest_framework.fields import DateTimeField

    try:
        return DateTimeField().to_internal_value(value)
    except Exception as exc:  # noqa: BLE001 - DRF raises its ValidationError
        raise ApplicationError(f"Invalid {name}.", fields={name: ["An ISO 8601 date-time."]}) \
            from exc


def _int_param(request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApplicationError(f"Invalid {name}.", fields={name: ["An integer."]}) from None
    if not lo <= value <= hi:
        raise ApplicationError(f"Invalid {name}.", fields={name: [f"Between {lo} and {hi}."]})
    return value


# --- strategies ----------------------------------------------------------------------------------

class StrategyTypeViewSet(TenantGenericViewSet):
    required_scopes = {"GET": "strategies:read"}
    serializer_class = s.StrategyTypeSerializer
    pagination_class = None  # a handful of types, listed whole
    queryset = Strategy.objects.none()  # the registry is not a table; for the schema only

    @extend_schema(summary="The strategy types of the engine and their parameters",
                   responses=s.StrategyTypeSerializer(many=True))
    def list(self, request, org_slug: str):
        return Response(s.StrategyTypeSerializer(list_strategies(), many=True).data)


class StrategyViewSet(TenantGenericViewSet):
    required_scopes = STRATEGIES
    queryset = Strategy.objects.prefetch_related("versions")
    serializer_class = s.StrategyOutSerializer
    extra_error_codes = ("409",)

    @extend_schema(summary="List strategies", responses=s.StrategyOutSerializer(many=True))
    def list(self, request, org_slug: str):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.StrategyOutSerializer(page, many=True).data)

    @extend_schema(summary="Create a strategy", request=s.StrategyInSerializer,
                   responses={201: s.StrategyOutSerializer})
    def create(self, request, org_slug: str):
        data = _valid(s.StrategyInSerializer, request.data)
        obj = strategy_services.strategy_create(organization=self.organization,
                                                actor=request.user, request=request, **data)
        return Response(s.StrategyOutSerializer(obj).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Get a strategy")
    def retrieve(self, request, org_slug: str, pk: int):
        return Response(s.StrategyOutSerializer(self.get_object()).data)

    @extend_schema(summary="Rename or describe a strategy (its versions never change)",
                   request=s.StrategyUpdateSerializer, responses=s.StrategyOutSerializer)
    def partial_update(self, request, org_slug: str, pk: int):
        data = _valid(s.StrategyUpdateSerializer, request.data, partial=True)
        obj = strategy_services.strategy_update(strategy=self.get_object(), actor=request.user,
                                                request=request, **data)
        return Response(s.StrategyOutSerializer(obj).data)

    @extend_schema(summary="Delete a strategy no simulation ran", responses={204: _NO_CONTENT})
    def destroy(self, request, org_slug: str, pk: int):
        strategy_services.strategy_delete(strategy=self.get_object(), actor=request.user,
                                          request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class StrategyVersionViewSet(TenantGenericViewSet):
    """Versions are created and read, never changed (there is no PUT, PATCH or DELETE)."""

    required_scopes = STRATEGIES
    serializer_class = s.VersionOutSerializer
    tenant_field = "strategy__organization"
    lookup_field = "number"

    def get_base_queryset(self) -> QuerySet:
        return StrategyVersion.objects.filter(strategy_id=self.kwargs.get("strategy_pk"))

    def _strategy(self) -> Strategy:
        from django.shortcuts import get_object_or_404

        return get_object_or_404(Strategy.objects.filter(organization=self.organization),
                                 pk=self.kwargs["strategy_pk"])

    @extend_schema(summary="List a strategy's versions", responses=s.VersionOutSerializer(many=True))
    def list(self, request, org_slug: str, strategy_pk: int):
        self._strategy()
        page = self.paginate_queryset(self.get_queryset().order_by("-number"))
        return self.get_paginated_response(s.VersionOutSerializer(page, many=True).data)

    @extend_schema(
        summary="Save a new immutable version",
        description="Parameters are validated against the strategy type's parameter specs; "
                    "rules text is compiled and every error is reported as "
                    "'line L, column C: message'.",
        request=s.VersionInSerializer, responses={201: s.VersionOutSerializer})
    def create(self, request, org_slug: str, strategy_pk: int):
        strategy = self._strategy()
        data = _valid(s.VersionInSerializer, request.data)
        version = strategy_services.version_create(strategy=strategy, actor=request.user,
                                                   request=request, **data)
        return Response(s.VersionOutSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Get one version by number")
    def retrieve(self, request, org_slug: str, strategy_pk: int, number: int):
        return Response(s.VersionOutSerializer(self.get_object()).data)


# --- simulations ---------------------------------------------------------------------------------

class SimulationViewSet(TenantGenericViewSet):
    required_scopes = SIMULATIONS
    queryset = Simulation.objects.select_related("strategy_version", "dataset")
    serializer_class = s.SimulationOutSerializer
    extra_error_codes = ("409", "413", "422")

    @extend_schema(summary="List simulations",
                   parameters=[OpenApiParameter("status", str, enum=RunStatus.values)],
                   responses=s.SimulationOutSerializer(many=True))
    def list(self, request, org_slug: str):
        qs = self.get_queryset()
        wanted = request.query_params.get("status")
        if wanted:
            qs = qs.filter(status=wanted)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(s.SimulationOutSerializer(page, many=True).data)

    @extend_schema(
        summary="Start a simulation",
        description="Send an `Idempotency-Key` header to make retries safe: the same key with "
                    "the same body returns the first response again (header "
                    "`Idempotent-Replayed: true`); with another body it is a 422, and while "
                    "the first request is still in flight a 409. Limits: 413 when the run is "
                    "larger than the per-run limit (bars × symbols), 429 with Retry-After when "
                    "the organisation has too many runs queued or running.",
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        request=s.SimulationInSerializer, responses={201: s.SimulationOutSerializer})
    def create(self, request, org_slug: str):
        key = request.headers.get("Idempotency-Key")

        def work() -> tuple[int, dict]:
            data = _valid(s.SimulationInSerializer, request.data, self.get_serializer_context())
            sim = sim_services.simulation_create(organization=self.organization,
                                                 actor=request.user, request=request, **data)
            return status.HTTP_201_CREATED, dict(s.SimulationOutSerializer(sim).data)

        if not key:
            code, body = work()
            return Response(body, status=code)
        stored = idempotent_call(
            organization=self.organization, key=key, scope="simulation.create",
            request_hash=request_fingerprint(method="POST", path=request.path,
                                             body=request.data),
            work=work)
        response = Response(stored.body, status=stored.status)
        if stored.replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(summary="Get a simulation")
    def retrieve(self, request, org_slug: str, pk: int):
        return Response(s.SimulationOutSerializer(self.get_object()).data)

    @extend_schema(summary="Cancel a queued or running simulation", request=None,
                   responses=s.SimulationOutSerializer)
    def cancel(self, request, org_slug: str, pk: int):
        sim = sim_services.simulation_cancel(simulation=self.get_object(), actor=request.user,
                                             request=request)
        return Response(s.SimulationOutSerializer(sim).data)

    @extend_schema(summary="Run the same version on the same data again (a new simulation)",
                   request=None, responses={201: s.SimulationOutSerializer})
    def rerun(self, request, org_slug: str, pk: int):
        sim = sim_services.simulation_rerun(simulation=self.get_object(), actor=request.user,
                                            request=request)
        return Response(s.SimulationOutSerializer(sim).data, status=status.HTTP_201_CREATED)

    def _finished(self) -> Simulation:
        sim = self.get_object()
        if sim.status != RunStatus.SUCCEEDED:
            raise ApplicationError(f"The simulation has no results (it is {sim.status}).",
                                   code="no_results", status_code=409)
        return sim

    @extend_schema(summary="The simulation's trades (paginated)",
                   responses=s.TradeSerializer(many=True))
    def trades(self, request, org_slug: str, pk: int):
        sim = self._finished()
        page = self.paginate_queryset(selectors.simulation_trades(simulation=sim))
        return self.get_paginated_response(s.TradeSerializer(page, many=True).data)

    @extend_schema(summary="The simulation's trades as CSV",
                   responses={(200, "text/csv"): OpenApiTypes.BINARY})
    def trades_csv(self, request, org_slug: str, pk: int):
        sim = self._finished()
        fields = ["index", "symbol", "side", "entry_time", "entry_price", "exit_time",
                  "exit_price", "quantity", "pnl", "fees"]

        def rows():
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerow(fields)
            for trade in selectors.simulation_trades(simulation=sim).iterator(chunk_size=2000):
                writer.writerow(["" if getattr(trade, f) is None else
                                 (getattr(trade, f).isoformat() if hasattr(getattr(trade, f),
                                                                           "isoformat")
                                  else getattr(trade, f)) for f in fields])
                if buf.tell() > 65536:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
            yield buf.getvalue()

        response = StreamingHttpResponse(rows(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="simulation-{sim.pk}-trades.csv"'
        return response

    @extend_schema(summary="The simulation's fills (paginated)",
                   responses=s.FillSerializer(many=True))
    def fills(self, request, org_slug: str, pk: int):
        sim = self._finished()
        page = self.paginate_queryset(selectors.simulation_fills(simulation=sim))
        return self.get_paginated_response(page)

    @extend_schema(summary="The equity curve, downsampled to at most `points` points on request",
                   parameters=[OpenApiParameter("points", int)], responses=s.EquitySerializer)
    def equity(self, request, org_slug: str, pk: int):
        sim = self._finished()
        points = _int_param(request, "points", 0, 0, 1_000_000)
        ts, eq = selectors.simulation_equity(simulation=sim, points=points)
        return Response({"simulation": sim.pk, "n_points": int(sim.result.n_points),
                         "timestamps": iso_timestamps(ts), "equity": eq.tolist()})

    @extend_schema(
        summary="The simulation's durable event log after sequence number `since`",
        description="Use it to resume after a WebSocket gap: ask for the events after the last "
                    "sequence number you saw.",
        parameters=[OpenApiParameter("since", int), OpenApiParameter("limit", int)],
        responses=s.SimulationEventsPageSerializer)
    def events(self, request, org_slug: str, pk: int):
        sim = self.get_object()
        since = _int_param(request, "since", 0, 0, 2**31)
        limit = _int_param(request, "limit", 500, 1, 5000)
        events = list(selectors.simulation_events(simulation=sim, since=since)[:limit])
        return Response({"simulation": sim.pk, "last_seq": sim.last_seq,
                         "events": s.SimulationEventSerializer(events, many=True).data})

    @extend_schema(summary="Compare simulations side by side (metrics table)",
                   parameters=[OpenApiParameter(
                       "ids", str, description="Comma-separated simulation ids (default: the "
                                               "10 most recent succeeded simulations)")],
                   responses=s.CompareSerializer)
    def compare(self, request, org_slug: str):
        raw = request.query_params.get("ids", "")
        try:
            ids = [int(x) for x in raw.split(",") if x.strip()]
        except ValueError:
            raise ApplicationError("ids must be comma-separated integers.",
                                   fields={"ids": ["Comma-separated integers."]}) from None
        if not ids:
            ids = list(self.get_queryset().filter(status=RunStatus.SUCCEEDED)
                       .order_by("-created_at", "-id").values_list("id", flat=True)[:10])
        if len(ids) > 20:
            raise ApplicationError("Compare at most 20 simulations.", fields={"ids": ["1 to 20."]})
        sims = {sim.pk: sim for sim in self.get_queryset().filter(pk__in=ids)}
        missing = [i for i in ids if i not in sims]
        if missing:
            from rest_framework.exceptions import NotFound

            raise NotFound(f"No simulation {missing[0]}.")
        ordered = [sims[i] for i in ids]
        names = sorted({k for sim in ordered for k in (sim.metrics or {})})
        table = {name: [(sim.metrics or {}).get(name) for sim in ordered] for name in names}
        return Response({"simulations": s.SimulationOutSerializer(ordered, many=True).data,
                         "metrics": table})


# --- analyses ------------------------------------------------------------------------------------

class AnalysisViewSet(TenantGenericViewSet):
    required_scopes = SIMULATIONS
    queryset = Analysis.objects.all()
    serializer_class = s.AnalysisOutSerializer

    @extend_schema(summary="List analyses", responses=s.AnalysisOutSerializer(many=True))
    def list(self, request, org_slug: str):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.AnalysisOutSerializer(page, many=True).data)

    @extend_schema(summary="Start a parameter sweep, walk-forward or Monte Carlo analysis",
                   request=s.AnalysisInSerializer, responses={201: s.AnalysisOutSerializer})
    def create(self, request, org_slug: str):
        data = _valid(s.AnalysisInSerializer, request.data, self.get_serializer_context())
        analysis = analysis_services.analysis_create(organization=self.organization,
                                                     actor=request.user, request=request, **data)
        return Response(s.AnalysisOutSerializer(analysis).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Get an analysis (progress counted over its children)")
    def retrieve(self, request, org_slug: str, pk: int):
        return Response(s.AnalysisOutSerializer(self.get_object()).data)


