"""Input and output serializers of the risk API. Inputs accept only what a caller may set (never
the organisation, the author, a version or a delivery status); outputs never include a webhook's
secret, and show its URL masked (the path and query carry the token)."""

from __future__ import annotations

from rest_framework import serializers

from risk.core.alerts import FORMATS
from risk.core.measures import METHODS
from risk.models import (
    AlertDelivery,
    AlertEvents,
    AlertKind,
    AlertTarget,
    Breach,
    Escalation,
    KillSwitch,
    KillSwitchEvent,
    Level,
    RiskLimitSet,
    Source,
)
from risk.services import mask_url


class LimitSetOutSerializer(serializers.ModelSerializer):
    updated_by = serializers.EmailField(source="updated_by.email", default=None, read_only=True,
                                       allow_null=True)

    class Meta:
        model = RiskLimitSet
        fields = ["id", "level", "ref_id", "limits", "note", "version", "updated_by",
                  "created_at", "updated_at"]


class LimitSetCreateSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=Level.choices)
    ref_id = serializers.IntegerField(min_value=1, required=False, allow_null=True,
                                      help_text="The strategy's or deployment's id; omit for "
                                                "the organisation level.")
    limits = serializers.DictField(help_text="Limits as in docs/risk.md; unset ones may be "
                                             "omitted. Replaces the level's limits as a whole.")
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class LimitSetUpdateSerializer(serializers.Serializer):
    limits = serializers.DictField(required=False)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True)


class LimitFilterSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=Level.choices, required=False)
    ref_id = serializers.IntegerField(min_value=1, required=False)


class EffectiveFilterSerializer(serializers.Serializer):
    strategy = serializers.IntegerField(min_value=1, required=False)
    deployment = serializers.IntegerField(min_value=1, required=False)


class EffectiveLimitsOutSerializer(serializers.Serializer):
    limits = serializers.DictField(help_text="The most restrictive value of each limit.")
    sources = serializers.DictField(child=serializers.CharField(),
                                    help_text="The level each value came from.")


class BreachOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Breach
        fields = ["id", "source", "source_id", "rule", "reason", "halted", "at", "symbol",
                  "order", "recorded_at"]


class BreachFilterSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=Source.choices, required=False)
    source_id = serializers.IntegerField(min_value=1, required=False)
    halted = serializers.BooleanField(required=False, allow_null=True, default=None)


class KillSwitchEventOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = KillSwitchEvent
        fields = ["id", "transition", "actor_label", "reason", "rule", "breach", "at"]


class KillSwitchOutSerializer(serializers.ModelSerializer):
    rearmed_by = serializers.EmailField(source="rearmed_by.email", default=None, read_only=True,
                                       allow_null=True)
    tripped_by = serializers.CharField(source="tripped_by_label", read_only=True)
    events = serializers.SerializerMethodField()

    class Meta:
        model = KillSwitch
        fields = ["state", "reason", "rule", "tripped_at", "tripped_by", "rearmed_at",
                  "rearmed_by", "rearm_reason", "escalate", "events"]

    def get_events(self, obj: KillSwitch) -> list[dict]:
        events = self.context.get("events") or []
        return KillSwitchEventOutSerializer(events, many=True).data


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, allow_blank=True)


class KillSwitchConfigureSerializer(serializers.Serializer):
    escalate = serializers.ChoiceField(choices=Escalation.choices)


class MeasuresInSerializer(serializers.Serializer):
    returns = serializers.ListField(child=serializers.FloatField(), required=False,
                                    help_text="Simple returns per period (0.01 = 1 %).")
    equity = serializers.ListField(child=serializers.FloatField(), required=False,
                                   help_text="An equity curve; returns are computed from it.")
    confidence = serializers.FloatField(min_value=0.5, max_value=0.9999, default=0.99)
    horizon = serializers.IntegerField(min_value=1, max_value=250, default=1)
    methods = serializers.ListField(child=serializers.ChoiceField(choices=METHODS),
                                    required=False)
    backtest_window = serializers.IntegerField(min_value=20, max_value=2520, default=250)
    var_forecasts = serializers.ListField(child=serializers.FloatField(), required=False,
                                          help_text="VaR forecasts to backtest, one per return.")
    n_simulations = serializers.IntegerField(min_value=100, max_value=200_000, default=20_000)
    seed = serializers.IntegerField(min_value=0, default=0)
    asset_returns = serializers.DictField(child=serializers.ListField(
        child=serializers.FloatField()), required=False,
        help_text="Returns per asset, for the correlation matrix.")
    weights = serializers.DictField(child=serializers.FloatField(), required=False)
    positions = serializers.DictField(child=serializers.FloatField(), required=False)
    prices = serializers.DictField(child=serializers.FloatField(), required=False)
    instruments = serializers.DictField(child=serializers.DictField(
        child=serializers.CharField()), required=False)
    portfolio_equity = serializers.FloatField(min_value=0.0, required=False,
                                              help_text="Equity for exposure fractions and the "
                                                        "utilisation of the limits.")

    def validate(self, attrs: dict) -> dict:
        if ("returns" in attrs) == ("equity" in attrs):
            raise serializers.ValidationError({"returns": ["Give either returns or equity."]})
        return attrs


class EstimateOutSerializer(serializers.Serializer):
    var = serializers.FloatField()
    cvar = serializers.FloatField()
    observations = serializers.IntegerField()


class KupiecOutSerializer(serializers.Serializer):
    observations = serializers.IntegerField()
    breaches = serializers.IntegerField()
    expected_rate = serializers.FloatField()
    observed_rate = serializers.FloatField()
    likelihood_ratio = serializers.FloatField()
    p_value = serializers.FloatField()
    reject = serializers.BooleanField()
    significance = serializers.FloatField()
    window = serializers.IntegerField(required=False)


class MeasuresOutSerializer(serializers.Serializer):
    observations = serializers.IntegerField()
    confidence = serializers.FloatField()
    horizon = serializers.IntegerField()
    estimates = serializers.DictField(child=EstimateOutSerializer())
    backtest = serializers.DictField(child=KupiecOutSerializer())
    correlation = serializers.DictField(required=False)
    portfolio = serializers.DictField(required=False)
    exposures = serializers.DictField(required=False)
    utilisation = serializers.ListField(child=serializers.DictField(), required=False)


class AlertTargetOutSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="Masked: the path carries the token.")
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = AlertTarget
        fields = ["id", "name", "kind", "format", "email", "url", "telegram_chat_id",
                  "has_secret", "events", "enabled", "created_at", "updated_at"]

    def get_url(self, obj: AlertTarget) -> str:
        return mask_url(obj.url) if obj.url else ""

    def get_has_secret(self, obj: AlertTarget) -> bool:
        return bool(obj.secret)


class AlertTargetInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=AlertKind.choices)
    format = serializers.ChoiceField(choices=FORMATS, default="json")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    url = serializers.CharField(max_length=2048, required=False, allow_blank=True, default="")
    telegram_chat_id = serializers.CharField(max_length=64, required=False, allow_blank=True,
                                             default="")
    secret = serializers.CharField(max_length=200, required=False, allow_blank=True,
                                   default="", write_only=True,
                                   help_text="Signs JSON webhooks (X-Nexow-Signature); never "
                                             "returned.")
    events = serializers.ChoiceField(choices=AlertEvents.choices, default=AlertEvents.HALTS)
    enabled = serializers.BooleanField(default=True)


class AlertTargetUpdateSerializer(AlertTargetInSerializer):
    """Every field optional; a URL or secret left out is kept."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False
            field.default = serializers.empty


class AlertDeliveryOutSerializer(serializers.ModelSerializer):
    target_name = serializers.CharField(source="target.name", read_only=True)

    class Meta:
        model = AlertDelivery
        fields = ["id", "target", "target_name", "breach", "kill_event", "status", "attempts",
                  "last_error", "delivered_at", "created_at"]
