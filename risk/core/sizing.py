"""Position sizing rules a strategy can pick by name: how much to trade, before any limit says no.

Each rule is a plain function with keyword-only arguments, registered in `SIZERS` under a
name so that a strategy's configuration can say `{"method": "kelly", "params": {...}}` and call
`size_position(method, **params)`. What each rule returns:

- `fixed_fractional` — a quantity in units (risk a fraction of equity between entry and stop);
- `kelly` — a fraction of equity to allocate (never negative, capped);
- `volatility_target` — a leverage multiplier (exposure / equity) that scales a position to a
  target annualised volatility;
- `inverse_volatility`, `equal_risk_contribution` (alias `risk_parity`) — portfolio weights that
  sum to 1.

The formulas are in docs/risk.md.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize


class SizingError(ValueError):
    """Bad sizing input; the message names the parameter."""


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SizingError(f"{name} must be a finite number")
    if value <= 0:
        raise SizingError(f"{name} must be greater than 0")
    return float(value)


def fixed_fractional(
    *,
    equity: float,
    risk_fraction: float,
    entry_price: float,
    stop_price: float | None = None,
    stop_distance: float | None = None,
    point_value: float = 1.0,
    lot_size: float | None = None,
) -> float:
    """Units such that hitting the stop loses `risk_fraction` of equity.

    units = equity x risk_fraction / (|entry - stop| x point_value), rounded down to a whole
    number of `lot_size` when given. Give either `stop_price` or `stop_distance`.
    """
    equity = _positive("equity", equity)
    risk_fraction = _positive("risk_fraction", risk_fraction)
    if risk_fraction > 1:
        raise SizingError("risk_fraction must be at most 1")
    entry_price = _positive("entry_price", entry_price)
    point_value = _positive("point_value", point_value)
    if (stop_price is None) == (stop_distance is None):
        raise SizingError("give exactly one of stop_price and stop_distance")
    if stop_price is not None:
        distance = abs(entry_price - _positive("stop_price", stop_price))
        if distance == 0:
            raise SizingError("stop_price must differ from entry_price")
    else:
        distance = _positive("stop_distance", stop_distance)  # type: ignore[arg-type]
    units = equity * risk_fraction / (distance * point_value)
    if lot_size is not None:
        lot = _positive("lot_size", lot_size)
        # The small epsilon keeps 3.0000000000000004 lots from becoming 3 lots minus one.
        units = math.floor(units / lot + 1e-9) * lot
    return units


def kelly(
    *,
    win_rate: float,
    payoff_ratio: float,
    fraction: float = 1.0,
    cap: float = 1.0,
) -> float:
    """Kelly fraction of equity f* = p - (1 - p) / b, scaled by `fraction`, within [0, cap].

    `win_rate` p is the probability a trade wins, `payoff_ratio` b the average win divided by
    the average loss. A negative edge gives 0 (do not trade), never a short. `fraction` < 1 is
    fractional Kelly (half-Kelly = 0.5), the usual hedge against an over-estimated edge.
    """
    if not 0 <= win_rate <= 1:
        raise SizingError("win_rate must be between 0 and 1")
    payoff_ratio = _positive("payoff_ratio", payoff_ratio)
    fraction = _positive("fraction", fraction)
    if fraction > 1:
        raise SizingError("fraction must be at most 1 (over-betting Kelly only adds risk)")
    cap = _positive("cap", cap)
    f_star = win_rate - (1.0 - win_rate) / payoff_ratio
    return min(max(0.0, f_star) * fraction, cap)


def annualised_volatility(returns: Sequence[float] | np.ndarray, periods_per_year: float) -> float:
    """Annualised sample standard deviation (ddof=1) of periodic returns."""
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or r.size < 2:
        raise SizingError("returns must be a 1-D series of at least 2 values")
    if not np.all(np.isfinite(r)):
        raise SizingError("returns must be finite")
    return float(np.std(r, ddof=1) * math.sqrt(periods_per_year))


def volatility_target(
    *,
    target_volatility: float,
    realised_volatility: float | None = None,
    returns: Sequence[float] | np.ndarray | None = None,
    periods_per_year: float = 252.0,
    max_leverage: float | None = None,
) -> float:
    """Leverage (exposure / equity) = target_volatility / realised_volatility, capped.

    Give the realised volatility (annualised) directly, or the recent periodic `returns` from
    which it is estimated (sample standard deviation x sqrt(periods_per_year)).
    """
    target_volatility = _positive("target_volatility", target_volatility)
    if (realised_volatility is None) == (returns is None):
        raise SizingError("give exactly one of realised_volatility and returns")
    if returns is not None:
        periods_per_year = _positive("periods_per_year", periods_per_year)
        vol = annualised_volatility(returns, periods_per_year)
        if vol == 0:
            raise SizingError("returns has zero volatility; the target cannot be scaled")
    else:
        vol = _positive("realised_volatility", realised_volatility)  # type: ignore[arg-type]
    leverage = target_volatility / vol
    if max_leverage is not None:
        leverage = min(leverage, _positive("max_leverage", max_leverage))
    return leverage


def _covariance(covariance: Any) -> np.ndarray:
    cov = np.asarray(covariance, dtype=float)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] == 0:
        raise SizingError("covariance must be a square matrix")
    if not np.all(np.isfinite(cov)) or not np.allclose(cov, cov.T):
        raise SizingError("covariance must be finite and symmetric")
    if np.any(np.diag(cov) <= 0):
        raise SizingError("covariance must have positive variances on its diagonal")
    return cov


def inverse_volatility(
    *,
    volatilities: Sequence[float] | np.ndarray | None = None,
    covariance: Any = None,
) -> np.ndarray:
    """Weights proportional to 1 / volatility, summing to 1 (naive risk parity).

    Volatilities are given directly or read from the diagonal of a covariance matrix.
    """
    if (volatilities is None) == (covariance is None):
        raise SizingError("give exactly one of volatilities and covariance")
    if covariance is not None:
        vols = np.sqrt(np.diag(_covariance(covariance)))
    else:
        vols = np.asarray(volatilities, dtype=float)
        if vols.ndim != 1 or vols.size == 0:
            raise SizingError("volatilities must be a non-empty 1-D list")
        if not np.all(np.isfinite(vols)) or np.any(vols <= 0):
            raise SizingError("volatilities must be finite and greater than 0")
    inv: np.ndarray = 1.0 / vols
    weights: np.ndarray = inv / inv.sum()
    return weights


def risk_contributions(weights: Any, covariance: Any) -> np.ndarray:
    """Each asset's share of portfolio variance: w_i (Σw)_i / (w'Σw); they sum to 1."""
    w = np.asarray(weights, dtype=float)
    cov = _covariance(covariance)
    marginal = cov @ w
    shares: np.ndarray = w * marginal / float(w @ marginal)
    return shares


def equal_risk_contribution(
    *,
    covariance: Any,
    budget: Sequence[float] | np.ndarray | None = None,
    tolerance: float = 1e-10,
) -> np.ndarray:
    """Long-only weights whose risk contributions match `budget` (equal by default).

    Solves the convex problem of Spinu (2013): minimise ½ y'Σy - Σ b_i ln y_i over y > 0,
    whose optimum satisfies y_i (Σy)_i = b_i, i.e. risk contributions proportional to the
    budget; the weights are y / Σy. Uses scipy's L-BFGS-B with the analytic gradient and
    checks the result, raising if the contributions miss the budget by more than 1e-6.
    """
    cov = _covariance(covariance)
    n = cov.shape[0]
    b = np.full(n, 1.0 / n) if budget is None else np.asarray(budget, dtype=float)
    if b.shape != (n,) or not np.all(np.isfinite(b)) or np.any(b <= 0):
        raise SizingError("budget must hold one positive number per asset")
    b = b / b.sum()
    # Rescale so the problem is well conditioned whatever the units of the covariance.
    scale = float(np.mean(np.diag(cov)))
    c = cov / scale

    def objective(y: np.ndarray) -> tuple[float, np.ndarray]:
        cy = c @ y
        return 0.5 * float(y @ cy) - float(b @ np.log(y)), cy - b / y

    start = inverse_volatility(covariance=c)
    start = start / math.sqrt(float(start @ c @ start))  # the optimum has y'Σy = Σb = 1
    result = minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(1e-12, None)] * n,
        options={"gtol": tolerance, "ftol": 0.0, "maxiter": 10_000},
    )
    weights: np.ndarray = result.x / result.x.sum()
    contributions = risk_contributions(weights, c)
    if not np.allclose(contributions, b, atol=1e-6, rtol=0):
        raise SizingError(
            "equal risk contribution did not converge: contributions "
            f"{np.round(contributions, 6).tolist()} against the budget {np.round(b, 6).tolist()}"
        )
    return weights


SIZERS: dict[str, Callable[..., Any]] = {
    "fixed_fractional": fixed_fractional,
    "kelly": kelly,
    "volatility_target": volatility_target,
    "inverse_volatility": inverse_volatility,
    "equal_risk_contribution": equal_risk_contribution,
    "risk_parity": equal_risk_contribution,
}


def size_position(method: str, **params: Any) -> Any:
    """Run the sizing rule registered as `method` with `params` (see `SIZERS`)."""
    try:
        rule = SIZERS[method]
    except KeyError:
        raise SizingError(
            f"unknown sizing method {method!r}; choose one of {', '.join(sorted(SIZERS))}"
        ) from None
    accepted = inspect.signature(rule).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise SizingError(
            f"{method} does not take {', '.join(unknown)}; it takes {', '.join(accepted)}"
        )
    missing = [
        name
        for name, p in accepted.items()
        if p.default is inspect.Parameter.empty and name not in params
    ]
    if missing:
        raise SizingError(f"{method} needs {', '.join(missing)}")
    return rule(**params)
