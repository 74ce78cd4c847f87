"""The pure core of risk management: sizing, limits, pre-trade checks, kill switch, measures.

Plain Python, numpy and scipy only — no Django — so the engine's backtests and the live
platform share exactly the same rules, and the maths is tested without a database. The
platform's models, services and API wrap these modules; see docs/risk.md.
"""

from .checks import LimitUsage, Rulebook, utilisation
from .killswitch import KillSwitch, KillSwitchError, first_tripped, role_may
from .limits import EffectiveLimits, LimitsValidationError, RiskLimits, merge_limits
from .sizing import SIZERS, SizingError, size_position

__all__ = [
    "SIZERS",
    "EffectiveLimits",
    "KillSwitch",
    "KillSwitchError",
    "LimitUsage",
    "LimitsValidationError",
    "RiskLimits",
    "Rulebook",
    "SizingError",
    "first_tripped",
    "merge_limits",
    "role_may",
    "size_position",
    "utilisation",
]
