"""Input and output serializers of the trading API (separate: callers never set the
organisation, the owner, the status or any result)."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.base import TenantPrimaryKeyRelatedField
from trading.models import (
    Analysis,
    AnalysisKind,
    AssetClass,
    Calendar,
    Dataset,
    Instrument,
    Simulation,
    SimulationEvent,
    SimulationTrade,
    Strategy,
    StrategyVersion,
)
from trading.selectors import visible
from trading.services.marketdata import GENERATORS


@extend_schema_field(OpenApiTypes.INT)
class VisibleDatasetField(serializers.PrimaryKeyRelatedField):
    """A dataset id of the caller's organisation or of the platform; anything else reads as
    "does not exist"."""

    def get_queryset(self) -> QuerySet:
        org = self.context.get("organization")
        if org is None:
            return Dataset.objects.none()
        return Dataset.objects.filter(visible(org))


# --- instruments ---------------------------------------------------------------------------------

class InstrumentOutSerializer(serializers.ModelSerializer):
    platform = serializers.BooleanField(source="is_platform", read_only=True)

    class Meta:
        model = Instrument
        fields = ["id", "symbol", "asset_class", "exchange", "currency", "calendar", "tick_size",
                  "lot_size", "sector", "platform", "created_at"]


class InstrumentInSerializer(serializers.Serializer):
    symbol = serializers.CharField(max_length=40)
    asset_class = serializers.ChoiceField(choices=AssetClass.choices, default=AssetClass.EQUITY)
    exchange = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    currency = serializers.CharField(max_length=10, default="USD")
    calendar = serializers.ChoiceField(choices=Calendar.choices, default=Calendar.EXCHANGE)
    tick_size = serializers.DecimalField(max_digits=20, decimal_places=10, min_value=0,
                                         default="0.01")
    lot_size = serializers.DecimalField(max_digits=20, decimal_places=10, min_value=0,
                                        default="1")
    sector = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")


class InstrumentUpdateSerializer(InstrumentInSerializer):
    symbol = serializers.CharField(max_length=40, required=False)
    asset_class = serializers.ChoiceField(choices=AssetClass.choices, required=False)
    currency = serializers.CharField(max_length=10, required=False)
    calendar = serializers.ChoiceField(choices=Calendar.choices, required=False)
    tick_size = serializers.DecimalField(max_digits=20, decimal_places=10, required=False)
    lot_size = serializers.DecimalField(max_digits=20, decimal_places=10, required=False)
    exchange = serializers.CharField(max_length=40, required=False, allow_blank=True)
    sector = serializers.CharField(max_length=80, required=False, allow_blank=True)


# --- datasets ------------------------------------------------------------------------------------

class DatasetOutSerializer(serializers.ModelSerializer):
    platform = serializers.BooleanField(source="is_platform", read_only=True)
    symbols = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = ["id", "name", "symbols", "bar_seconds", "rows", "start", "end", "source",
                  "source_detail", "platform", "created_at"]

    def get_symbols(self, obj: Dataset) -> list[str]:
        return sorted(i.symbol for i in obj.instruments.all())


class DatasetImportSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    file = serializers.FileField(help_text="A .csv or .parquet bar file.")
    symbol = serializers.CharField(max_length=40, required=False,
                                   help_text="Symbol of a single-symbol file (default: file name).")
    asset_class = serializers.ChoiceField(choices=AssetClass.choices, required=False)
    calendar = serializers.ChoiceField(choices=Calendar.choices, required=False)
    currency = serializers.CharField(max_length=10, required=False)


class ValidationErrorRowSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    column = serializers.CharField()
    message = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    accepted = serializers.BooleanField()
    rows = serializers.IntegerField()
    errors = ValidationErrorRowSerializer(many=True)
    duplicates = ValidationErrorRowSerializer(many=True)
    gaps = serializers.ListField(child=serializers.DictField())


class DatasetImportResultSerializer(serializers.Serializer):
    dataset = DatasetOutSerializer()
    report = ImportReportSerializer()


class DatasetSyntheticSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    generator = serializers.ChoiceField(choices=sorted(GENERATORS), default="gbm")
    n_bars = serializers.IntegerField(min_value=2)
    seed = serializers.IntegerField(min_value=0, default=0)
    options = serializers.DictField(required=False, default=dict,
                                    help_text="Generator options, e.g. symbol, bar_seconds, "
                                              "volatility.")


class BarOutSerializer(serializers.Serializer):
    ts = serializers.DateTimeField()
    open = serializers.FloatField()
    high = serializers.FloatField()
    low = serializers.FloatField()
    close = serializers.FloatField()
    volume = serializers.FloatField()


class BarsPageSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    resample = serializers.CharField(allow_null=True)
    count = serializers.IntegerField()
    offset = serializers.IntegerField()
    results = BarOutSerializer(many=True)


# --- strategies ----------------------------------------------------------------------------------

class StrategyOutSerializer(serializers.ModelSerializer):
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = Strategy
        fields = ["id", "name", "kind", "description", "latest_version", "created_at"]

    def get_latest_version(self, obj: Strategy) -> int | None:
        numbers = [v.number for v in obj.versions.all()]
        return max(numbers) if numbers else None


class StrategyInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    kind = serializers.CharField(max_length=60, help_text='An engine strategy type or "rules".')
    description = serializers.CharField(required=False, allow_blank=True, default="")


class StrategyUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class VersionOutSerializer(serializers.ModelSerializer):
    strategy = serializers.IntegerField(source="strategy_id")

    class Meta:
        model = StrategyVersion
        fields = ["id", "strategy", "number", "params", "universe", "sizing", "costs",
                  "rules_text", "note", "created_at"]


class VersionInSerializer(serializers.Serializer):
    params = serializers.DictField(required=False, default=dict)
    universe = serializers.ListField(child=serializers.CharField(max_length=40), required=False,
                                     default=list)
    sizing = serializers.DictField(required=False, default=dict,
                                   help_text='{"mode": "all-cash"|"fixed-quantity"|'
                                             '"fixed-notional"|"percent-equity", "value": n}')
    costs = serializers.DictField(required=False, default=dict,
                                  help_text="commission_bps, maker_bps, commission_per_unit, "
                                            "commission_min, commission_fixed, slippage_bps, "
                                            "slippage_impact")
    rules_text = serializers.CharField(required=False, allow_blank=True, default="",
                                       trim_whitespace=False)
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class StrategyTypeSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    kind = serializers.CharField()
    params = serializers.ListField(child=serializers.DictField())


# --- simulations ---------------------------------------------------------------------------------

class SimulationOutSerializer(serializers.ModelSerializer):
    strategy = serializers.IntegerField(source="strategy_version.strategy_id", read_only=True)
    strategy_version = serializers.IntegerField(source="strategy_version_id", read_only=True)
    version_number = serializers.IntegerField(source="strategy_version.number", read_only=True)
    dataset = serializers.IntegerField(source="dataset_id", read_only=True)
    rerun_of = serializers.IntegerField(source="rerun_of_id", read_only=True, allow_null=True)

    class Meta:
        model = Simulation
        fields = ["id", "strategy", "strategy_version", "version_number", "dataset",
                  "period_start", "period_end", "config", "status", "cancel_requested",
                  "attempts", "progress", "size", "heartbeat_at", "started_at", "finished_at",
                  "error", "metrics", "n_trades", "result_hash", "last_seq", "rerun_of",
                  "created_at"]


class SimulationInSerializer(serializers.Serializer):
    # The version's strategy comes in the same query: the service checks its organisation.
    strategy_version = TenantPrimaryKeyRelatedField(
        queryset=StrategyVersion.objects.select_related("strategy"),
        tenant_field="strategy__organization")
    dataset = VisibleDatasetField()
    period_start = serializers.DateTimeField(required=False, allow_null=True, default=None)
    period_end = serializers.DateTimeField(required=False, allow_null=True, default=None)
    config = serializers.DictField(required=False, default=dict,
                                   help_text="cash, allow_short, whole_units, participation, "
                                             "calendar, risk_free, seed, entry_tif, stop_loss, "
                                             "take_profit")


class SimulationEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = SimulationEvent
        fields = ["seq", "type", "payload", "created_at"]


class SimulationEventsPageSerializer(serializers.Serializer):
    simulation = serializers.IntegerField()
    last_seq = serializers.IntegerField()
    events = SimulationEventSerializer(many=True)


class TradeSerializer(serializers.ModelSerializer):
    class Meta:
        model = SimulationTrade
        fields = ["index", "symbol", "side", "entry_time", "entry_price", "exit_time",
                  "exit_price", "quantity", "pnl", "fees"]


class EquitySerializer(serializers.Serializer):
    simulation = serializers.IntegerField()
    n_points = serializers.IntegerField()
    timestamps = serializers.ListField(child=serializers.CharField())
    equity = serializers.ListField(child=serializers.FloatField())


class FillSerializer(serializers.Serializer):
    timestamp = serializers.CharField()
    symbol = serializers.CharField()
    side = serializers.CharField()
    quantity = serializers.FloatField()
    price = serializers.FloatField()
    commission = serializers.FloatField()
    order_type = serializers.CharField()


class CompareSerializer(serializers.Serializer):
    simulations = SimulationOutSerializer(many=True)
    metrics = serializers.DictField(child=serializers.ListField(allow_null=True))


# --- analyses ------------------------------------------------------------------------------------

class AnalysisOutSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True)

    class Meta:
        model = Analysis
        fields = ["id", "kind", "strategy_version", "dataset", "simulation", "spec", "status",
                  "n_children", "n_done", "n_failed", "progress", "result", "error",
                  "created_at", "started_at", "finished_at"]


class AnalysisInSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=AnalysisKind.choices)
    strategy_version = TenantPrimaryKeyRelatedField(
        queryset=StrategyVersion.objects.select_related("strategy"),
        tenant_field="strategy__organization",
        required=False, allow_null=True, default=None)
    dataset = VisibleDatasetField(required=False, allow_null=True, default=None)
    simulation = TenantPrimaryKeyRelatedField(queryset=Simulation.objects.all(), required=False,
                                              allow_null=True, default=None)
    spec = serializers.DictField(
        help_text="sweep / walk_forward: space {param: [values] | {low, high}}, method "
                  "(grid|random), n_samples, objective, maximize, seed, config; walk_forward "
                  "also n_windows, train_bars, test_bars, anchored. monte_carlo: method "
                  "(returns|trades), n_sims, n_chunks, block, seed.")
