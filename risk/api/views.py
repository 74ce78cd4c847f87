"""Risk API views: limits, effective limits, breaches, the kill switch, risk measures, alert
targets and deliveries. Thin: parse, call a service or selector, render. Organisation resolution,
scopes and tenant filtering come from `accounts.api.base`; services enforce the finer rules (who
may trip or re-arm the kill switch)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.response import Response

from accounts.api.base import TenantAPIView, TenantGenericViewSet
from risk import selectors, services
from risk.api import serializers as s
from risk.models import AlertDelivery, AlertTarget, Breach, RiskLimitSet, compact_limits

_NO_CONTENT = OpenApiResponse(description="Done; no content.")


def _valid(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- limits ---------------------------------------------------------------------------------

class LimitSetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantGenericViewSet):
    """Limits per level. Everyone with ``risk:read`` reads them; only owners and admins
    (``risk:admin``) set, change or remove them."""

    queryset = RiskLimitSet.objects.select_related("updated_by").order_by("level", "ref_id", "id")
    serializer_class = s.LimitSetOutSerializer
    extra_error_codes = ("409",)
    required_scopes = {
        "list": "risk:read", "retrieve": "risk:read", "create": "risk:admin",
        "update": "risk:admin", "partial_update": "risk:admin", "destroy": "risk:admin",
    }

    def filter_queryset(self, queryset):
        data = _valid(s.LimitFilterSerializer, self.request.query_params)
        if data.get("level"):
            queryset = queryset.filter(level=data["level"])
        if data.get("ref_id") is not None:
            queryset = queryset.filter(ref_id=data["ref_id"])
        return queryset

    @extend_schema(summary="List limit sets", parameters=[s.LimitFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="Set the limits of a level (replaces an existing set)",
                   request=s.LimitSetCreateSerializer, responses={201: s.LimitSetOutSerializer})
    def create(self, request, org_slug: str):
        data = _valid(s.LimitSetCreateSerializer, request.data)
        limit_set = services.limit_set_save(
            organization=self.organization, level=data["level"], ref_id=data.get("ref_id"),
            limits=data["limits"], note=data.get("note", ""), caller=self.caller,
            request=request)
        return Response(s.LimitSetOutSerializer(limit_set).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Replace a level's limits", request=s.LimitSetUpdateSerializer,
                   responses=s.LimitSetOutSerializer)
    def update(self, request, org_slug: str, pk: int):
        return self._save(request, partial=False)

    @extend_schema(summary="Change a level's limits or note", request=s.LimitSetUpdateSerializer,
                   responses=s.LimitSetOutSerializer)
    def partial_update(self, request, org_slug: str, pk: int):
        return self._save(request, partial=True)

    def _save(self, request, *, partial: bool) -> Response:
        current = self.get_object()
        data = _valid(s.LimitSetUpdateSerializer, request.data)
        if not partial and "limits" not in data:
            data["limits"] = {}  # PUT replaces: limits left out are no longer set
        limit_set = services.limit_set_save(
            organization=self.organization, level=current.level, ref_id=current.ref_id,
            limits=data.get("limits", current.limits), note=data.get("note", current.note),
            caller=self.caller, request=request)
        return Response(s.LimitSetOutSerializer(limit_set).data)

    @extend_schema(summary="Remove a level's limits", responses={204: _NO_CONTENT})
    def destroy(self, request, org_slug: str, pk: int):
        services.limit_set_delete(limit_set=self.get_object(), caller=self.caller,
                                  request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EffectiveLimitsView(TenantAPIView):
    """The limits in force for a strategy or deployment: the most restrictive of each level."""

    required_scopes = {"GET": "risk:read"}

    @extend_schema(summary="Effective limits", parameters=[s.EffectiveFilterSerializer],
                   responses=s.EffectiveLimitsOutSerializer)
    def get(self, request, org_slug: str):
        data = _valid(s.EffectiveFilterSerializer, request.query_params)
        merged = selectors.effective_limits(organization=self.organization,
                                            strategy=data.get("strategy"),
                                            deployment=data.get("deployment"))
        return Response({"limits": compact_limits(merged.limits),
                         "sources": dict(sorted(merged.sources.items()))})


# --- breaches -------------------------------------------------------------------------------

class BreachViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantGenericViewSet):
    """Refused orders and halts recorded from simulations and deployments, newest first."""

    queryset = Breach.objects.order_by("-at", "-id")
    serializer_class = s.BreachOutSerializer
    required_scopes = {"list": "risk:read", "retrieve": "risk:read"}

    def filter_queryset(self, queryset):
        data = _valid(s.BreachFilterSerializer, self.request.query_params)
        if data.get("source"):
            queryset = queryset.filter(source=data["source"])
        if data.get("source_id") is not None:
            queryset = queryset.filter(source_id=data["source_id"])
        if data.get("halted") is not None:
            queryset = queryset.filter(halted=data["halted"])
        return queryset

    @extend_schema(summary="List breaches", parameters=[s.BreachFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="A breach")
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)


# --- kill switch ----------------------------------------------------------------------------

def _switch_out(organization) -> dict:
    switch = selectors.kill_switch_get(organization=organization)
    events = list(selectors.kill_switch_event_list(organization=organization)[:10])
    return s.KillSwitchOutSerializer(switch, context={"events": events}).data


class KillSwitchView(TenantAPIView):
    """The organisation's emergency kill switch. Reading needs ``risk:read``; tripping needs
    ``risk:write`` (and a role `risk.core.killswitch` lets trip); choosing the escalation
    policy needs ``risk:admin``."""

    required_scopes = {"GET": "risk:read", "POST": "risk:write", "PATCH": "risk:admin"}
    extra_error_codes = ("409",)

    def _out(self) -> dict:
        return _switch_out(self.organization)

    @extend_schema(summary="Kill switch state", responses=s.KillSwitchOutSerializer)
    def get(self, request, org_slug: str):
        return Response(self._out())

    @extend_schema(summary="Trip the kill switch (stops all trading of the organisation)",
                   request=s.ReasonSerializer, responses=s.KillSwitchOutSerializer)
    def post(self, request, org_slug: str):
        data = _valid(s.ReasonSerializer, request.data)
        services.kill_switch_trip(organization=self.organization, reason=data["reason"],
                                  caller=self.caller, request=request)
        return Response(self._out())

    @extend_schema(summary="Choose which automatic halts trip the organisation's switch",
                   request=s.KillSwitchConfigureSerializer, responses=s.KillSwitchOutSerializer)
    def patch(self, request, org_slug: str):
        data = _valid(s.KillSwitchConfigureSerializer, request.data)
        services.kill_switch_configure(organization=self.organization,
                                       escalate=data["escalate"], caller=self.caller,
                                       request=request)
        return Response(self._out())


class KillSwitchRearmView(TenantAPIView):
    """Re-arm the kill switch: owners and admins only, with a reason (audited)."""

    required_scopes = {"POST": "risk:admin"}
    extra_error_codes = ("409",)

    @extend_schema(summary="Re-arm the kill switch", request=s.ReasonSerializer,
                   responses=s.KillSwitchOutSerializer)
    def post(self, request, org_slug: str):
        data = _valid(s.ReasonSerializer, request.data)
        services.kill_switch_rearm(organization=self.organization, reason=data["reason"],
                                   caller=self.caller, request=request)
        return Response(_switch_out(self.organization))


# --- measures -------------------------------------------------------------------------------

class MeasuresView(TenantAPIView):
    """VaR and CVaR of a return or equity series by each method, with a Kupiec backtest, and
    optionally correlation, exposures and the utilisation of the organisation's limits."""

    required_scopes = {"POST": "risk:read"}
    extra_error_codes = ("413",)

    @extend_schema(summary="Compute risk measures", request=s.MeasuresInSerializer,
                   responses=s.MeasuresOutSerializer)
    def post(self, request, org_slug: str):
        data = _valid(s.MeasuresInSerializer, request.data)
        return Response(services.measures_compute(organization=self.organization, **data))


# --- alerts ---------------------------------------------------------------------------------

class AlertTargetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                         TenantGenericViewSet):
    """Where risk alerts go. Webhook URLs are checked against SSRF; secrets and URL tokens are
    never returned."""

    queryset = AlertTarget.objects.order_by("name", "id")
    serializer_class = s.AlertTargetOutSerializer
    required_scopes = {
        "list": "risk:read", "retrieve": "risk:read", "create": "risk:admin",
        "partial_update": "risk:admin", "destroy": "risk:admin",
    }

    @extend_schema(summary="List alert targets")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="Add an alert target", request=s.AlertTargetInSerializer,
                   responses={201: s.AlertTargetOutSerializer})
    def create(self, request, org_slug: str):
        data = _valid(s.AlertTargetInSerializer, request.data)
        target = services.alert_target_create(organization=self.organization,
                                              caller=self.caller, request=request, **data)
        return Response(s.AlertTargetOutSerializer(target).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Change an alert target", request=s.AlertTargetUpdateSerializer,
                   responses=s.AlertTargetOutSerializer)
    def partial_update(self, request, org_slug: str, pk: int):
        target = self.get_object()
        data = _valid(s.AlertTargetUpdateSerializer, request.data)
        target = services.alert_target_update(target=target, caller=self.caller,
                                              request=request, **data)
        return Response(s.AlertTargetOutSerializer(target).data)

    @extend_schema(summary="Remove an alert target", responses={204: _NO_CONTENT})
    def destroy(self, request, org_slug: str, pk: int):
        services.alert_target_delete(target=self.get_object(), caller=self.caller,
                                     request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AlertDeliveryViewSet(mixins.ListModelMixin, TenantGenericViewSet):
    """Alerts sent or being sent, newest first, with their attempts and last error."""

    queryset = AlertDelivery.objects.select_related("target").order_by("-created_at", "-id")
    serializer_class = s.AlertDeliveryOutSerializer
    required_scopes = {"list": "risk:read"}

    @extend_schema(summary="List alert deliveries")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)
