"""The compiled event loop: order book, fills, cash and positions, bar by bar.

All state lives in numpy arrays so the same numba functions serve two drivers:

* `run_signals` — the whole loop compiled, for vectorised strategies without a pre-trade check
  (the fast path: no Python per bar);
* `fill_bar` / `mark_bar` / `decide_signals` called once per bar from Python, when a pre-trade
  check or a Python `Strategy` has to take part in each decision (the slow path).

Per bar t the order is fixed, and it is what makes the loop free of look-ahead:
1. working orders placed at earlier closes try to fill on bar t's OHLC (orders.py has the rules),
   in placement order, sharing the bar's volume cap;
2. the portfolio is marked at bar t's close (`equity[t]`);
3. decisions taken at bar t's close place orders that can fill from bar t+1 on.

Parameter and state vectors are indexed by the `P_*` and `S_*` constants below.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .costs import (
    N_COST_PARAMS,
    P_FIXED,
    P_IMPACT,
    P_MAKER_RATE,
    P_MINIMUM,
    P_PER_UNIT,
    P_RATE,
    P_SLIP_BPS,
)
from .orders import (
    DAY,
    F_BAR,
    F_FEE,
    F_MAKER,
    F_ORDER,
    F_PRICE,
    F_QTY,
    F_SIDE,
    F_SYM,
    F_TAG,
    F_TYPE,
    IOC,
    LIMIT,
    MARKET,
    N_FILL_FIELDS,
    N_ORDER_FIELDS,
    O_BAR,
    O_DAY,
    O_FILLED,
    O_GROUP,
    O_ID,
    O_KIND,
    O_LIMIT,
    O_PENDING,
    O_QTY,
    O_SIDE,
    O_SL,
    O_STOP,
    O_SYM,
    O_TAG,
    O_TIF,
    O_TP,
    O_TRIG,
    O_TYPE,
    O_VAL,
    STOP,
    STOP_LIMIT,
    TAG_BRACKET,
    TAG_ENTRY,
    TAG_EXIT,
    TAG_TARGET,
)
from .sizing import (
    SIZE_ALL_CASH,
    SIZE_CLOSE,
    SIZE_NOTIONAL,
    SIZE_PERCENT,
    SIZE_QTY,
    SIZE_TARGET_WEIGHT,
)

# Parameter vector: the cost parameters (costs.py) followed by these.
P_CAP = N_COST_PARAMS  # volume participation cap (0 = none)
P_WHOLE = N_COST_PARAMS + 1  # 1 = whole units
P_SHORT = N_COST_PARAMS + 2  # 1 = short selling allowed
P_ENTRY_TIF = N_COST_PARAMS + 3
P_SIZE_KIND = N_COST_PARAMS + 4
P_SIZE_VAL = N_COST_PARAMS + 5
P_SIG_TP = N_COST_PARAMS + 6
P_SIG_SL = N_COST_PARAMS + 7
N_PARAMS = N_COST_PARAMS + 8

# State vector.
S_CASH, S_NORD, S_NFILL, S_NEXTID, S_DROPPED = range(5)
N_STATE = 5

# Flags of the optional signal arrays passed to the kernel.
HAS_SHORT_ENTRIES, HAS_SHORT_EXITS, HAS_LIMIT, HAS_STOP, HAS_TARGET = range(5)

_DEAD = -1.0


@njit(cache=True)
def fee_of(pr, qty, px, maker):
    rate = pr[P_MAKER_RATE] if maker else pr[P_RATE]
    fee = pr[P_FIXED] + (qty * px) * rate + pr[P_PER_UNIT] * qty
    if pr[P_MINIMUM] > 0.0 and fee < pr[P_MINIMUM]:  # no minimum turns a maker rebate into 0
        fee = pr[P_MINIMUM]
    return fee


@njit(cache=True)
def add_order(ob, st, sym, side, otype, tif, qty, kind, val, limit, stop, bar, tp, sl, tag,
              group, pending):
    """Append an order; returns its row, or -1 (counted in S_DROPPED) when the book is full."""
    n = int(st[S_NORD])
    if n >= ob.shape[0]:
        st[S_DROPPED] += 1.0
        return -1
    ob[n, O_SYM] = sym
    ob[n, O_SIDE] = side
    ob[n, O_TYPE] = otype
    ob[n, O_TIF] = tif
    ob[n, O_QTY] = qty
    ob[n, O_KIND] = kind
    ob[n, O_VAL] = val
    ob[n, O_LIMIT] = limit
    ob[n, O_STOP] = stop
    ob[n, O_TRIG] = 0.0
    ob[n, O_BAR] = bar
    ob[n, O_DAY] = -1.0
    ob[n, O_TP] = tp
    ob[n, O_SL] = sl
    ob[n, O_ID] = st[S_NEXTID]
    ob[n, O_TAG] = tag
    ob[n, O_GROUP] = group
    ob[n, O_FILLED] = 0.0
    ob[n, O_PENDING] = pending
    st[S_NEXTID] += 1.0
    st[S_NORD] = n + 1
    return n


@njit(cache=True)
def compact(ob, st):
    """Drop dead rows, keeping placement order."""
    n = int(st[S_NORD])
    k = 0
    for i in range(n):
        if ob[i, O_SYM] != _DEAD:
            if k != i:
                ob[k, :] = ob[i, :]
            k += 1
    st[S_NORD] = k


@njit(cache=True)
def cancel_symbol(ob, st, sym):
    n = int(st[S_NORD])
    for i in range(n):
        if ob[i, O_SYM] == sym:
            ob[i, O_SYM] = _DEAD
    compact(ob, st)


@njit(cache=True)
def resolve_qty(ob, i, px, st, pos, pr, equity):
    """Size order i at fill price px (may flip the side of a target-weight order)."""
    kind = int(ob[i, O_KIND])
    s = int(ob[i, O_SYM])
    val = ob[i, O_VAL]
    side = ob[i, O_SIDE]
    if kind == SIZE_QTY:
        q = val
    elif kind == SIZE_NOTIONAL:
        q = val / px
    elif kind == SIZE_PERCENT:
        q = (val * equity) / px
    elif kind == SIZE_ALL_CASH:
        q = (st[S_CASH] / (1.0 + pr[P_RATE])) / px
    elif kind == SIZE_TARGET_WEIGHT:
        delta = (val * equity) / px - pos[s]
        if pr[P_WHOLE] == 1.0:
            # whole units of the target, not of the difference, so that repeated targets settle
            delta = math.floor(abs(val * equity) / px) * (1.0 if val >= 0 else -1.0) - pos[s]
        side = 1.0 if delta > 0 else -1.0
        ob[i, O_SIDE] = side
        q = abs(delta)
    else:  # SIZE_CLOSE
        p = pos[s]
        q = abs(p) if p * side < 0 else 0.0
    if q < 0 or not (q == q):
        q = 0.0
    if pr[P_WHOLE] == 1.0:
        q = math.floor(q + 1e-9) if kind == SIZE_CLOSE else math.floor(q)
    return q


@njit(cache=True)
def fill_bar(t, op, hi, lo, cl, vo, day, ob, st, pos, fills, pr, used):
    """Step 1 of bar t: try every eligible working order against the bar."""
    ns = pos.shape[0]
    for s in range(ns):
        used[s] = 0.0
    n0 = int(st[S_NORD])
    if n0 == 0:
        return
    # equity at the open, used by percent-of-equity and target-weight sizing
    eq_open = st[S_CASH]
    for s in range(ns):
        if pos[s] != 0.0:
            eq_open += pos[s] * op[t, s]
    whole = pr[P_WHOLE] == 1.0
    any_dead = False
    for i in range(n0):
        if ob[i, O_SYM] == _DEAD or ob[i, O_PENDING] != 0.0 or ob[i, O_BAR] >= t:
            continue
        s = int(ob[i, O_SYM])
        tif = int(ob[i, O_TIF])
        if tif == DAY:
            if ob[i, O_DAY] < 0:
                ob[i, O_DAY] = day[t]
            elif ob[i, O_DAY] != day[t]:
                ob[i, O_SYM] = _DEAD
                any_dead = True
                continue
        o = op[t, s]
        h = hi[t, s]
        lw = lo[t, s]
        v = vo[t, s]
        side = ob[i, O_SIDE]
        typ = int(ob[i, O_TYPE])
        px = np.nan
        maker = False
        if typ == MARKET:
            px = o
        elif typ == LIMIT or (typ == STOP_LIMIT and ob[i, O_TRIG] == 1.0):
            lim = ob[i, O_LIMIT]
            maker = True
            if side > 0:
                if o <= lim:
                    px = o
                elif lw <= lim:
                    px = lim
            else:
                if o >= lim:
                    px = o
                elif h >= lim:
                    px = lim
        elif typ == STOP:
            stp = ob[i, O_STOP]
            if side > 0:
                if o >= stp:
                    px = o
                elif h >= stp:
                    px = stp
            else:
                if o <= stp:
                    px = o
                elif lw <= stp:
                    px = stp
        else:  # untriggered stop-limit
            stp = ob[i, O_STOP]
            lim = ob[i, O_LIMIT]
            if side > 0:
                if o >= stp:
                    ob[i, O_TRIG] = 1.0
                    maker = True
                    if o <= lim:
                        px = o
                    elif lw <= lim:
                        px = lim
                elif h >= stp:
                    ob[i, O_TRIG] = 1.0
                    if stp <= lim:
                        px = stp
            else:
                if o <= stp:
                    ob[i, O_TRIG] = 1.0
                    maker = True
                    if o >= lim:
                        px = o
                    elif h >= lim:
                        px = lim
                elif lw <= stp:
                    ob[i, O_TRIG] = 1.0
                    if stp >= lim:
                        px = stp
        if px == px:
            taker = not maker
            if taker and pr[P_SLIP_BPS] != 0.0:
                px = px * (1.0 + side * pr[P_SLIP_BPS] / 10_000.0)
            q = ob[i, O_QTY]
            if not (q == q):
                q = resolve_qty(ob, i, px, st, pos, pr, eq_open)
                side = ob[i, O_SIDE]
                ob[i, O_QTY] = q
            keep = True
            if q <= 0.0:
                keep = False
            else:
                # volume participation cap (shared by all orders of the symbol on this bar)
                if pr[P_CAP] > 0.0:
                    avail = pr[P_CAP] * v - used[s]
                    if whole:
                        avail = math.floor(avail + 1e-9)
                    if avail < q:
                        q = avail if avail > 0.0 else 0.0
                # no short selling: a sell can only reduce a long position
                if side < 0 and pr[P_SHORT] != 1.0:
                    cap = pos[s] if pos[s] > 0.0 else 0.0
                    if cap < q:
                        q = cap
                        if q <= 0.0:
                            keep = False
                if q > 0.0 and taker and pr[P_IMPACT] != 0.0 and v > 0.0:
                    px = px * (1.0 + side * pr[P_IMPACT] * (q / v))
                # no leverage: a buy must be paid from cash
                if q > 0.0 and side > 0:
                    cost = q * px + fee_of(pr, q, px, maker)
                    cash = st[S_CASH]
                    if cost > cash + 1e-9 * abs(cash) + 1e-9:
                        # q * px + max(minimum, fixed + rate * q * px + per_unit * q) <= cash
                        # holds iff both the linear fee and the minimum fee are affordable
                        rate = pr[P_MAKER_RATE] if maker else pr[P_RATE]
                        qmax = (cash - pr[P_FIXED]) / (px * (1.0 + rate) + pr[P_PER_UNIT])
                        if pr[P_MINIMUM] > 0.0:
                            qmax = min(qmax, (cash - pr[P_MINIMUM]) / px)
                        if whole:
                            qmax = math.floor(qmax)
                        for _ in range(4):  # float rounding can leave it one ulp too large
                            if qmax <= 0.0 or qmax * px + fee_of(pr, qmax, px, maker) <= cash:
                                break
                            qmax = qmax - 1.0 if whole else qmax * (1.0 - 1e-12)
                        if qmax > 0.0 and qmax * px + fee_of(pr, qmax, px, maker) > cash:
                            qmax = 0.0
                        q = min(q, qmax) if qmax > 0.0 else 0.0
                        if q <= 0.0:
                            keep = False
                if q > 0.0:
                    fee = fee_of(pr, q, px, maker)
                    notional = q * px
                    if side > 0:
                        st[S_CASH] = st[S_CASH] - (notional + fee)
                    else:
                        st[S_CASH] = st[S_CASH] + (notional - fee)
                    was = pos[s]
                    pos[s] = was + side * q
                    if abs(pos[s]) < 1e-12 * q:
                        pos[s] = 0.0
                    used[s] += q
                    k = int(st[S_NFILL])
                    fills[k, F_BAR] = t
                    fills[k, F_SYM] = s
                    fills[k, F_SIDE] = side
                    fills[k, F_QTY] = q
                    fills[k, F_PRICE] = px
                    fills[k, F_FEE] = fee
                    fills[k, F_ORDER] = ob[i, O_ID]
                    fills[k, F_TYPE] = typ
                    fills[k, F_MAKER] = 1.0 if maker else 0.0
                    fills[k, F_TAG] = ob[i, O_TAG]
                    st[S_NFILL] = k + 1
                    first = ob[i, O_FILLED] == 0.0
                    ob[i, O_FILLED] += q
                    ob[i, O_QTY] -= q
                    if ob[i, O_QTY] <= 1e-12 * ob[i, O_FILLED]:
                        ob[i, O_QTY] = 0.0
                        keep = False
                    if pos[s] == 0.0:
                        # flat: closing orders of this symbol have nothing left to close
                        for j in range(int(st[S_NORD])):
                            if j != i and ob[j, O_SYM] == s and (
                                ob[j, O_TAG] == TAG_BRACKET or ob[j, O_TAG] == TAG_EXIT
                            ):
                                ob[j, O_SYM] = _DEAD
                                any_dead = True
                    elif first and (ob[i, O_TP] == ob[i, O_TP] or ob[i, O_SL] == ob[i, O_SL]):
                        gid = ob[i, O_ID]
                        tp = ob[i, O_TP]
                        sl = ob[i, O_SL]
                        if tp == tp:
                            add_order(ob, st, s, -side, LIMIT, 0, np.nan, SIZE_CLOSE, 0.0,
                                      px * (1.0 + side * tp), np.nan, t, np.nan, np.nan,
                                      TAG_BRACKET, gid, 0.0)
                        if sl == sl:
                            add_order(ob, st, s, -side, STOP, 0, np.nan, SIZE_CLOSE, 0.0,
                                      np.nan, px * (1.0 - side * sl), t, np.nan, np.nan,
                                      TAG_BRACKET, gid, 0.0)
            if not keep:
                ob[i, O_SYM] = _DEAD
                any_dead = True
                continue
        if tif == IOC and ob[i, O_SYM] != _DEAD:
            ob[i, O_SYM] = _DEAD
            any_dead = True
    if any_dead:
        compact(ob, st)


@njit(cache=True)
def mark_bar(t, cl, st, pos, equity):
    """Step 2 of bar t: equity at the close."""
    eq = st[S_CASH]
    for s in range(pos.shape[0]):
        if pos[s] != 0.0:
            eq += pos[s] * cl[t, s]
    equity[t] = eq
    return eq


@njit(cache=True)
def _has_tag(ob, st, s, tag):
    for i in range(int(st[S_NORD])):
        if ob[i, O_SYM] == s and ob[i, O_TAG] == tag:
            return True
    return False


@njit(cache=True)
def decide_signals(t, entries, exits, sentries, sexits, limit, stop, target, flags, ob, st, pos,
                   last_target, pr, pending):
    """Step 3 of bar t for a vectorised strategy: turn its signals into orders.

    Flat and an entry signal: place the entry (market, or limit/stop when a price is given).
    Long and an exit signal (short and a short exit): cancel the symbol's orders and close.
    Other signals are ignored, not queued. A target weight that changed places one order.
    """
    ns = pos.shape[0]
    tif = pr[P_ENTRY_TIF]
    kind = pr[P_SIZE_KIND]
    val = pr[P_SIZE_VAL]
    tp = pr[P_SIG_TP]
    sl = pr[P_SIG_SL]
    for s in range(ns):
        if flags[HAS_TARGET]:
            w = target[t, s]
            if w == w and w != last_target[s]:
                last_target[s] = w
                cancel_symbol(ob, st, s)
                add_order(ob, st, s, 1.0, MARKET, 0, np.nan, SIZE_TARGET_WEIGHT, w, np.nan,
                          np.nan, t, np.nan, np.nan, TAG_TARGET, -1.0, pending)
            continue
        p = pos[s]
        ex = exits[t, s]
        sex = flags[HAS_SHORT_EXITS] and sexits[t, s]
        if p > 0.0 and ex and not _has_tag(ob, st, s, TAG_EXIT):
            cancel_symbol(ob, st, s)
            add_order(ob, st, s, -1.0, MARKET, 0, np.nan, SIZE_CLOSE, 0.0, np.nan, np.nan, t,
                      np.nan, np.nan, TAG_EXIT, -1.0, pending)
            continue
        if p < 0.0 and sex and not _has_tag(ob, st, s, TAG_EXIT):
            cancel_symbol(ob, st, s)
            add_order(ob, st, s, 1.0, MARKET, 0, np.nan, SIZE_CLOSE, 0.0, np.nan, np.nan, t,
                      np.nan, np.nan, TAG_EXIT, -1.0, pending)
            continue
        if p != 0.0 or _has_tag(ob, st, s, TAG_ENTRY):
            continue
        side = 0.0
        if entries[t, s] and not ex:
            side = 1.0
        elif flags[HAS_SHORT_ENTRIES] and sentries[t, s] and not sex:
            side = -1.0
        if side == 0.0:
            continue
        lim = limit[t, s] if flags[HAS_LIMIT] else np.nan
        stp = stop[t, s] if flags[HAS_STOP] else np.nan
        if lim == lim and stp == stp:
            otype = STOP_LIMIT
        elif lim == lim:
            otype = LIMIT
        elif stp == stp:
            otype = STOP
        else:
            otype = MARKET
        add_order(ob, st, s, side, otype, tif, np.nan, kind, val, lim, stp, t, tp, sl, TAG_ENTRY,
                  -1.0, pending)


@njit(cache=True)
def run_signals(t0, t1, op, hi, lo, cl, vo, day, entries, exits, sentries, sexits, limit, stop,
                target, flags, ob, st, pos, last_target, fills, equity, pr, used):
    """Bars [t0, t1) entirely compiled. Returns the next bar to process (< t1 when the fills
    ledger needs to grow first)."""
    n = cl.shape[0]
    ns = cl.shape[1]
    for t in range(t0, t1):
        if fills.shape[0] - st[S_NFILL] < st[S_NORD] + 4:
            return t
        # The calls are guarded inline: calling a compiled function with a dozen arrays costs
        # reference counting per array, which would dominate bars where nothing happens.
        if st[S_NORD] > 0:
            fill_bar(t, op, hi, lo, cl, vo, day, ob, st, pos, fills, pr, used)
        mark_bar(t, cl, st, pos, equity)
        if t < n - 1:
            act = False
            for s in range(ns):
                if entries[t, s] or exits[t, s]:
                    act = True
                elif flags[HAS_SHORT_ENTRIES] and sentries[t, s]:
                    act = True
                elif flags[HAS_SHORT_EXITS] and sexits[t, s]:
                    act = True
                elif flags[HAS_TARGET] and target[t, s] == target[t, s]:
                    act = True
                if act:
                    break
            if act:
                decide_signals(t, entries, exits, sentries, sexits, limit, stop, target, flags,
                               ob, st, pos, last_target, pr, 0.0)
    return t1


class Book:
    """The engine state for one run, with growth of the order book and the fills ledger."""

    def __init__(self, n_bars: int, n_symbols: int, cash: float, params: np.ndarray) -> None:
        self.ob = np.zeros((8 * n_symbols + 16, N_ORDER_FIELDS))
        self.st = np.zeros(N_STATE)
        self.st[S_CASH] = cash
        self.pos = np.zeros(n_symbols)
        self.last_target = np.full(n_symbols, np.nan)
        # a first guess that avoids most regrowth (the loop asks for more when it runs out)
        self.fills = np.zeros((max(256, 4 * n_symbols, n_bars * n_symbols // 16), N_FILL_FIELDS))
        self.equity = np.zeros(n_bars)
        self.used = np.zeros(n_symbols)
        self.pr = params

    @property
    def cash(self) -> float:
        return float(self.st[S_CASH])

    @property
    def n_orders(self) -> int:
        return int(self.st[S_NORD])

    @property
    def n_fills(self) -> int:
        return int(self.st[S_NFILL])

    def ensure_fill_room(self, extra: int) -> None:
        if self.fills.shape[0] - self.n_fills < extra:
            grown = np.zeros((2 * self.fills.shape[0] + extra, N_FILL_FIELDS))
            grown[: self.n_fills] = self.fills[: self.n_fills]
            self.fills = grown

    def ensure_order_room(self, extra: int) -> None:
        if self.ob.shape[0] - self.n_orders < extra:
            grown = np.zeros((2 * self.ob.shape[0] + extra, N_ORDER_FIELDS))
            grown[: self.n_orders] = self.ob[: self.n_orders]
            self.ob = grown

    def orders_view(self) -> np.ndarray:
        return self.ob[: self.n_orders]

    def fills_view(self) -> np.ndarray:
        return self.fills[: self.n_fills]


def params_vector(cost: np.ndarray, *, cap: float, whole_units: bool, allow_short: bool,
                  entry_tif: int, size_kind: int, size_value: float, take_profit: float | None,
                  stop_loss: float | None) -> np.ndarray:
    extra = [
        cap,
        1.0 if whole_units else 0.0,
        1.0 if allow_short else 0.0,
        float(entry_tif),
        float(size_kind),
        float(size_value),
        np.nan if take_profit is None else float(take_profit),
        np.nan if stop_loss is None else float(stop_loss),
    ]
    return np.concatenate([cost, np.array(extra, dtype=np.float64)])
