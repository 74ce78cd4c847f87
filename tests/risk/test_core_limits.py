"""Risk limits: validation, JSON round trip, and merging organisation/strategy/deployment levels."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from risk.core.limits import LEVELS, LimitsValidationError, RiskLimits, merge_limits


def test_limits_round_trip_through_json():
    limits = RiskLimits(
        max_order_notional=10_000,
        max_gross_exposure=1.5,
        sector_limits={"technology": 0.4, "*": 0.25},
        restricted_symbols=frozenset({"GME", "AMC"}),
        max_orders_per_minute=30,
        daily_loss_fraction=0.02,
        flatten_on_halt=True,
    )
    data = json.loads(json.dumps(limits.to_dict()))
    assert data["restricted_symbols"] == ["AMC", "GME"]
    assert data["max_position_units"] is None
    assert RiskLimits.from_dict(data) == limits


def test_validation_names_every_bad_field():
    with pytest.raises(LimitsValidationError) as err:
        RiskLimits.from_dict(
            {
                "max_order_notional": -5,
                "max_drawdown": 20,
                "max_orders_per_minute": 2.5,
                "sector_limits": {"energy": "lots"},
                "flatten_on_halt": "yes",
                "restricted_symbols": "GME",
            }
        )
    assert err.value.errors == {
        "max_order_notional": "must be greater than 0",
        "max_drawdown": "must be a fraction between 0 and 1 (e.g. 0.05 for 5 %)",
        "max_orders_per_minute": "must be a whole number",
        "sector_limits.energy": "must be a number",
        "flatten_on_halt": "must be true, false or null",
        "restricted_symbols": "must be a list of symbols",
    }


def test_unknown_fields_and_booleans_as_numbers_are_refused():
    with pytest.raises(LimitsValidationError) as err:
        RiskLimits.from_dict({"max_leverage": 2})
    assert err.value.errors == {"max_leverage": "unknown limit"}
    with pytest.raises(LimitsValidationError) as err:
        RiskLimits(max_order_notional=True)
    assert err.value.errors == {"max_order_notional": "must be a number"}


def test_merge_takes_the_most_restrictive_value_and_remembers_its_level():
    org = RiskLimits(max_order_notional=10_000, max_gross_exposure=2.0, max_drawdown=0.2)
    strategy = RiskLimits(max_order_notional=25_000, max_gross_exposure=1.5)
    deployment = RiskLimits(max_drawdown=0.1, max_position_units=500)
    merged = merge_limits(org, strategy, deployment)
    assert merged.limits.max_order_notional == 10_000
    assert merged.source("max_order_notional") == "organisation"
    assert merged.limits.max_gross_exposure == 1.5
    assert merged.source("max_gross_exposure") == "strategy"
    assert merged.limits.max_drawdown == 0.1
    assert merged.source("max_drawdown") == "deployment"
    assert merged.limits.max_position_units == 500
    assert merged.limits.max_net_exposure is None
    assert merged.source("max_net_exposure") == ""


def test_merge_names_the_broader_level_on_a_tie_and_accepts_named_levels():
    merged = merge_limits(
        ("organisation", RiskLimits(max_order_notional=10_000)),
        ("deployment", RiskLimits(max_order_notional=10_000)),
    )
    assert merged.source("max_order_notional") == "organisation"


def test_merge_unions_restrictions_and_merges_groups_per_group():
    org = RiskLimits(restricted_symbols=frozenset({"GME"}), sector_limits={"energy": 0.3, "*": 0.5})
    strategy = RiskLimits(sector_limits={"energy": 0.4, "technology": 0.2})
    deployment = RiskLimits(restricted_symbols=frozenset({"AMC", "GME"}))
    merged = merge_limits(org, strategy, deployment)
    assert merged.limits.restricted_symbols == frozenset({"GME", "AMC"})
    assert merged.source("restricted_symbols.GME") == "organisation"
    assert merged.source("restricted_symbols.AMC") == "deployment"
    assert merged.limits.sector_limits == {"energy": 0.3, "technology": 0.2, "*": 0.5}
    assert merged.source("sector_limits.energy") == "organisation"
    assert merged.source("sector_limits.technology") == "strategy"


def test_a_default_group_limit_is_not_loosened_by_a_narrower_level_naming_the_group():
    org = RiskLimits(sector_limits={"*": 0.3})
    strategy = RiskLimits(sector_limits={"technology": 0.5, "energy": 0.2})
    merged = merge_limits(org, strategy)
    # Technology: the organisation's default 0.3 is tighter than the strategy's 0.5.
    assert merged.limits.sector_limits == {"*": 0.3, "technology": 0.3, "energy": 0.2}
    assert merged.source("sector_limits.technology") == "organisation"
    assert merged.source("sector_limits.energy") == "strategy"


def test_merge_flatten_on_halt_true_anywhere_wins():
    merged = merge_limits(
        RiskLimits(flatten_on_halt=False), RiskLimits(), RiskLimits(flatten_on_halt=True)
    )
    assert merged.limits.flatten_on_halt is True
    assert merged.source("flatten_on_halt") == "deployment"
    assert merge_limits(RiskLimits(flatten_on_halt=False)).limits.flatten_on_halt is False
    assert merge_limits(RiskLimits()).limits.flatten_on_halt is None


_limit = st.one_of(st.none(), st.floats(min_value=0.01, max_value=1.0))
_levels = st.builds(
    RiskLimits,
    max_order_notional=_limit,
    max_gross_exposure=_limit,
    max_drawdown=_limit,
    daily_loss_fraction=_limit,
    sector_limits=st.dictionaries(
        st.sampled_from(["energy", "technology", "*"]), _limit.filter(lambda v: v is not None)
    ),
)


@given(st.lists(_levels, min_size=1, max_size=3))
def test_merged_limits_are_never_looser_than_any_level(levels):
    merged = merge_limits(*levels)
    for name in ("max_order_notional", "max_gross_exposure", "max_drawdown", "daily_loss_fraction"):
        values = [getattr(level, name) for level in levels if getattr(level, name) is not None]
        assert getattr(merged.limits, name) == (min(values) if values else None)
        if values:
            first = [getattr(level, name) for level in levels].index(min(values))
            assert merged.source(name) == LEVELS[first]
    effective = merged.limits.sector_limits
    for level in levels:
        for group in ("energy", "technology", "utilities"):
            level_limit = level.sector_limits.get(group, level.sector_limits.get("*"))
            merged_limit = effective.get(group, effective.get("*"))
            if level_limit is not None:
                assert merged_limit is not None and merged_limit <= level_limit
