"""API of live and paper trading: broker accounts, deployments, orders, fills and positions.

Thin like the rest of the trading API: input serializers parse (foreign keys are looked up in
the caller's organisation only), services act, output serializers render. Broker credentials
are write-only: responses carry only the masked ``••••1234``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.api.base import TenantGenericViewSet, TenantPrimaryKeyRelatedField
from trading.live_engine import DeploymentState
from trading.models import (
    AccountMode,
    BrokerAccount,
    BrokerKind,
    Deployment,
    DeploymentStatus,
    LiveFill,
    LiveOrder,
    StrategyVersion,
)
from trading.services import deployments as services
from trading.services import orders as order_services
from trading.services.divergence import deployment_divergence

DEPLOYMENTS = {"GET": "deployments:read", "POST": "deployments:write",
               "PATCH": "deployments:write", "DELETE": "deployments:write",
               "flatten": "orders:write", "cancel_all": "orders:write"}
ORDERS = {"GET": "orders:read", "POST": "orders:write"}


def _valid(serializer_class, data, context) -> dict:
    ser = serializer_class(data=data, context=context)
    ser.is_valid(raise_exception=True)
    return ser.validated_data


def _int_param(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise serializers.ValidationError({name: ["A non-negative integer."]})
    return int(raw)


# --- serializers --------------------------------------------------------------------------------

class BrokerAccountInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80)
    kind = serializers.ChoiceField(choices=BrokerKind.choices, default=BrokerKind.PAPER)
    mode = serializers.ChoiceField(choices=AccountMode.choices, default=AccountMode.PAPER)
    credentials = serializers.DictField(child=serializers.CharField(max_length=4096),
                                        required=False, write_only=True,
                                        help_text="API key, secret... (write-only, encrypted)")
    options = serializers.DictField(required=False, default=dict)


class BrokerAccountPatchSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80, required=False)
    credentials = serializers.DictField(child=serializers.CharField(max_length=4096),
                                        required=False, write_only=True)
    options = serializers.DictField(required=False)


class BrokerAccountOutSerializer(serializers.ModelSerializer):
    credentials = serializers.CharField(source="masked_credentials", read_only=True)

    class Meta:
        model = BrokerAccount
        fields = ["id", "name", "kind", "mode", "credentials", "options", "created_at"]


class DeploymentInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80, required=False, default="")
    strategy_version = TenantPrimaryKeyRelatedField(queryset=StrategyVersion.objects.all(),
                                                    tenant_field="strategy__organization")
    broker_account = TenantPrimaryKeyRelatedField(queryset=BrokerAccount.objects.all())
    symbols = serializers.ListField(child=serializers.CharField(max_length=40),
                                    min_length=1, max_length=50)
    config = serializers.DictField(required=False, default=dict,
                                   help_text="cash, bar_seconds, lookback, warm_bars, seed, "
                                             "volatility, s0")


class DeploymentOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Deployment
        fields = ["id", "name", "strategy_version", "broker_account", "symbols", "config",
                  "status", "halt_reason", "last_bar_ts", "equity", "cash", "heartbeat_at",
                  "last_seq", "started_at", "stopped_at", "created_at"]


class DeploymentEventSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    type = serializers.CharField()
    payload = serializers.JSONField()
    created_at = serializers.DateTimeField()


class DeploymentEventsPageSerializer(serializers.Serializer):
    deployment = serializers.IntegerField()
    last_seq = serializers.IntegerField()
    events = DeploymentEventSerializer(many=True)


class OrderInSerializer(serializers.Serializer):
    deployment = TenantPrimaryKeyRelatedField(queryset=Deployment.objects.all())
    symbol = serializers.CharField(max_length=40)
    side = serializers.ChoiceField(choices=["buy", "sell"])
    quantity = serializers.FloatField(min_value=0.0)
    order_type = serializers.ChoiceField(choices=list(order_services.ORDER_TYPES),
                                         default="market")
    limit_price = serializers.FloatField(required=False, allow_null=True, default=None)
    stop_price = serializers.FloatField(required=False, allow_null=True, default=None)
    leg = serializers.RegexField(r"^[A-Za-z0-9_-]{0,40}$", required=False, default="",
                                 help_text="Optional: repeat it to make a retry safe.")


class OrderOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = LiveOrder
        fields = ["id", "deployment", "client_order_id", "symbol", "side", "quantity",
                  "order_type", "limit_price", "stop_price", "status", "filled_quantity",
                  "average_price", "broker_order_id", "leg", "reason", "decision_ts",
                  "created_at", "updated_at"]


class FillOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = LiveFill
        fields = ["id", "deployment", "fill_id", "client_order_id", "symbol", "side",
                  "quantity", "price", "fee", "fee_currency", "ts"]


class PositionSerializer(serializers.Serializer):
    deployment = serializers.IntegerField()
    symbol = serializers.CharField()
    quantity = serializers.FloatField()
    last_price = serializers.FloatField(allow_null=True)
    market_value = serializers.FloatField(allow_null=True)


class CancelAllSerializer(serializers.Serializer):
    cancelled = serializers.IntegerField()


class DivergenceRunSerializer(serializers.Serializer):
    equity = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()),
                                   help_text="[[bar open time in ns, equity], ...]")
    final_equity = serializers.FloatField()
    pnl = serializers.FloatField()
    fills = serializers.IntegerField()


class DivergenceFillSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=["buy", "sell"])
    status = serializers.ChoiceField(choices=["matched", "live_only", "backtest_only"])
    manual = serializers.BooleanField(help_text="Placed by a person (never matched).")
    client_order_id = serializers.CharField(allow_blank=True)
    live_ts = serializers.IntegerField(allow_null=True)
    live_price = serializers.FloatField(allow_null=True)
    live_quantity = serializers.FloatField(allow_null=True)
    backtest_ts = serializers.IntegerField(allow_null=True)
    backtest_price = serializers.FloatField(allow_null=True)
    backtest_quantity = serializers.FloatField(allow_null=True)
    price_diff = serializers.FloatField(allow_null=True, help_text="live - backtest price")
    slippage_bps = serializers.FloatField(allow_null=True,
                                          help_text="How much worse the live price is, in bps")
    pnl_effect = serializers.FloatField(allow_null=True,
                                        help_text="An unmatched fill's P&L at the last close")


class DivergenceSummarySerializer(serializers.Serializer):
    matched = serializers.IntegerField()
    live_only = serializers.IntegerField()
    backtest_only = serializers.IntegerField()
    mean_slippage_bps = serializers.FloatField(allow_null=True)
    pnl_drift = serializers.FloatField(help_text="live P&L - backtest P&L")
    max_equity_gap = serializers.FloatField()
    first_divergence_ts = serializers.IntegerField(allow_null=True)


class DivergenceSerializer(serializers.Serializer):
    bars = serializers.IntegerField()
    from_ts = serializers.IntegerField(allow_null=True)
    to_ts = serializers.IntegerField(allow_null=True)
    live = DivergenceRunSerializer()
    backtest = DivergenceRunSerializer()
    fills = DivergenceFillSerializer(many=True)
    summary = DivergenceSummarySerializer()


# --- views --------------------------------------------------------------------------------------

class BrokerAccountViewSet(TenantGenericViewSet):
    required_scopes = DEPLOYMENTS
    queryset = BrokerAccount.objects.all()
    serializer_class = BrokerAccountOutSerializer
    extra_error_codes = ("409",)

    @extend_schema(summary="List broker accounts", responses=BrokerAccountOutSerializer(many=True))
    def list(self, request, org_slug: str):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(BrokerAccountOutSerializer(page, many=True).data)

    @extend_schema(summary="Add a broker account (credentials are write-only)",
                   request=BrokerAccountInSerializer,
                   responses={201: BrokerAccountOutSerializer})
    def create(self, request, org_slug: str):
        data = _valid(BrokerAccountInSerializer, request.data, self.get_serializer_context())
        account = services.broker_account_create(organization=self.organization,
                                                 actor=request.user, request=request, **data)
        return Response(BrokerAccountOutSerializer(account).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(summary="Get a broker account")
    def retrieve(self, request, org_slug: str, pk: int):
        return Response(BrokerAccountOutSerializer(self.get_object()).data)

    @extend_schema(summary="Rename it, change options or replace its credentials",
                   request=BrokerAccountPatchSerializer, responses=BrokerAccountOutSerializer)
    def partial_update(self, request, org_slug: str, pk: int):
        account = self.get_object()
        data = _valid(BrokerAccountPatchSerializer, request.data, self.get_serializer_context())
        account = services.broker_account_update(account=account, actor=request.user,
                                                 request=request, **data)
        return Response(BrokerAccountOutSerializer(account).data)

    @extend_schema(summary="Delete a broker account without deployments",
                   responses={204: OpenApiResponse(description="Deleted; no content.")})
    def destroy(self, request, org_slug: str, pk: int):
        services.broker_account_delete(account=self.get_object(), actor=request.user,
                                       request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeploymentViewSet(TenantGenericViewSet):
    required_scopes = DEPLOYMENTS
    queryset = Deployment.objects.defer("state", "broker_state")
    serializer_class = DeploymentOutSerializer
    extra_error_codes = ("409", "422")

    @extend_schema(summary="List deployments",
                   parameters=[OpenApiParameter("status", str, enum=DeploymentStatus.values)],
                   responses=DeploymentOutSerializer(many=True))
    def list(self, request, org_slug: str):
        qs = self.get_queryset()
        if request.query_params.get("status"):
            qs = qs.filter(status=request.query_params["status"])
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(DeploymentOutSerializer(page, many=True).data)

    @extend_schema(summary="Deploy a strategy version on a broker account (pending)",
                   request=DeploymentInSerializer, responses={201: DeploymentOutSerializer})
    def create(self, request, org_slug: str):
        data = _valid(DeploymentInSerializer, request.data, self.get_serializer_context())
        dep = services.deployment_create(organization=self.organization, actor=request.user,
                                         request=request, **data)
        return Response(DeploymentOutSerializer(dep).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Get a deployment")
    def retrieve(self, request, org_slug: str, pk: int):
        return Response(DeploymentOutSerializer(self.get_object()).data)

    def _render(self, dep: Deployment) -> Response:
        dep = self.get_queryset().get(pk=dep.pk)
        return Response(DeploymentOutSerializer(dep).data)

    @extend_schema(summary="Start or resume (a halted one: owners and admins only)",
                   request=None, responses=DeploymentOutSerializer)
    def start(self, request, org_slug: str, pk: int):
        dep = services.deployment_start(deployment=self.get_object(), actor=request.user,
                                        caller=self.caller, request=request)
        return self._render(dep)

    @extend_schema(summary="Pause (no decisions; working orders stay)", request=None,
                   responses=DeploymentOutSerializer)
    def pause(self, request, org_slug: str, pk: int):
        return self._render(services.deployment_pause(deployment=self.get_object(),
                                                      actor=request.user, request=request))

    @extend_schema(summary="Stop for good (cancels its working orders)", request=None,
                   responses=DeploymentOutSerializer)
    def stop(self, request, org_slug: str, pk: int):
        return self._render(services.deployment_stop(deployment=self.get_object(),
                                                     actor=request.user, request=request))

    @extend_schema(summary="Cancel every working order of the deployment", request=None,
                   responses=CancelAllSerializer)
    def cancel_all(self, request, org_slug: str, pk: int):
        n = order_services.orders_cancel_all(deployment=self.get_object(), actor=request.user,
                                             request=request)
        return Response({"cancelled": n})

    @extend_schema(summary="Cancel working orders and close every position at market",
                   request=None, responses=OrderOutSerializer(many=True))
    def flatten(self, request, org_slug: str, pk: int):
        placed = order_services.deployment_flatten(deployment=self.get_object(),
                                                   actor=request.user, request=request)
        return Response(OrderOutSerializer(placed, many=True).data)

    @extend_schema(summary="The deployment's events after a sequence number",
                   description="Resume after a WebSocket gap: ask for the events after the "
                               "last sequence number you saw.",
                   parameters=[OpenApiParameter("since", int), OpenApiParameter("limit", int)],
                   responses=DeploymentEventsPageSerializer)
    def events(self, request, org_slug: str, pk: int):
        dep = self.get_object()
        since = _int_param(request, "since") or 0
        limit = min(_int_param(request, "limit") or 500, 5000)
        events = list(dep.events.filter(seq__gt=since).order_by("seq")[:limit])
        return Response({"deployment": dep.pk, "last_seq": dep.last_seq,
                         "events": DeploymentEventSerializer(events, many=True).data})


    @extend_schema(summary="The deployment next to its backtest on the same bars",
                   description="Replays the bars the deployment processed through the backtest "
                               "with the same strategy version, sizing, costs and cash, and "
                               "pairs the fills. Money is rounded to the cent.",
                   responses=DivergenceSerializer)
    def divergence(self, request, org_slug: str, pk: int):
        return Response(deployment_divergence(self.get_object()).to_dict())


class OrderViewSet(TenantGenericViewSet):
    required_scopes = ORDERS
    queryset = LiveOrder.objects.all()
    serializer_class = OrderOutSerializer
    extra_error_codes = ("409",)

    @extend_schema(summary="List orders",
                   parameters=[OpenApiParameter("deployment", int),
                               OpenApiParameter("status", str)],
                   responses=OrderOutSerializer(many=True))
    def list(self, request, org_slug: str):
        qs = self.get_queryset()
        deployment = _int_param(request, "deployment")
        if deployment is not None:
            qs = qs.filter(deployment_id=deployment)
        if request.query_params.get("status"):
            qs = qs.filter(status=request.query_params["status"])
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(OrderOutSerializer(page, many=True).data)

    @extend_schema(summary="Place a manual order on a deployment (risk-checked)",
                   request=OrderInSerializer, responses={201: OrderOutSerializer})
    def create(self, request, org_slug: str):
        data = _valid(OrderInSerializer, request.data, self.get_serializer_context())
        order = order_services.order_place(actor=request.user, request=request, **data)
        return Response(OrderOutSerializer(order).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Get an order")
    def retrieve(self, request, org_slug: str, pk: int):
        return Response(OrderOutSerializer(self.get_object()).data)

    @extend_schema(summary="Cancel a working order", request=None,
                   responses=OrderOutSerializer)
    def cancel(self, request, org_slug: str, pk: int):
        order = order_services.order_cancel(order=self.get_object(), actor=request.user,
                                            request=request)
        return Response(OrderOutSerializer(order).data)


class FillViewSet(TenantGenericViewSet):
    required_scopes = ORDERS
    queryset = LiveFill.objects.all()
    serializer_class = FillOutSerializer

    @extend_schema(summary="List fills", parameters=[OpenApiParameter("deployment", int)],
                   responses=FillOutSerializer(many=True))
    def list(self, request, org_slug: str):
        qs = self.get_queryset()
        deployment = _int_param(request, "deployment")
        if deployment is not None:
            qs = qs.filter(deployment_id=deployment)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(FillOutSerializer(page, many=True).data)


class PositionViewSet(TenantGenericViewSet):
    required_scopes = ORDERS
    queryset = Deployment.objects.exclude(state="")
    serializer_class = PositionSerializer

    @extend_schema(summary="Open positions of the running and paused deployments",
                   parameters=[OpenApiParameter("deployment", int)],
                   responses=PositionSerializer(many=True))
    def list(self, request, org_slug: str):
        qs = self.get_queryset().filter(status__in=[DeploymentStatus.RUNNING,
                                                    DeploymentStatus.PAUSED,
                                                    DeploymentStatus.HALTED])
        deployment = _int_param(request, "deployment")
        if deployment is not None:
            qs = qs.filter(pk=deployment)
        rows = []
        for dep in qs.order_by("id")[:200]:
            state = DeploymentState.from_json(dep.state)
            closes = state.ohlcv[3, -1, :] if state.ohlcv is not None and \
                state.ohlcv.shape[1] else None
            for j, symbol in enumerate(state.symbols):
                qty = state.positions.get(symbol, 0.0)
                if not qty:
                    continue
                last = float(closes[j]) if closes is not None else None
                rows.append({"deployment": dep.pk, "symbol": symbol, "quantity": qty,
                             "last_price": last,
                             "market_value": None if last is None else qty * last})
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(PositionSerializer(page, many=True).data)
