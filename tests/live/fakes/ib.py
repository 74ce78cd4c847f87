"""A stand-in for `ib_async.IB` fed with the objects ib_async itself builds.

Orders, statuses, executions, commission reports, historical and real-time bars are made the
way ib_async's wrapper makes them from TWS messages (`Trade` with `OrderStatus` and
`TradeLogEntry`, `Fill(contract, Execution, CommissionReport, time)`, `BarDataList`,
`RealTimeBarList` with its `updateEvent`), so the adapter and feed under test see exactly
what they would see from a live TWS connection — without one.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from ib_async import (
    AccountValue,
    BarData,
    BarDataList,
    CommissionReport,
    Contract,
    Execution,
    Fill,
    OrderStatus,
    Position,
    RealTimeBar,
    RealTimeBarList,
    Trade,
    TradeLogEntry,
)


class FakeIB:
    def __init__(self, *, mode: str = "submit", now: datetime | None = None) -> None:
        self.mode = mode  # submit | fill | reject
        self.now = now or datetime(2024, 1, 2, 15, 0, tzinfo=UTC)
        self.fill_price = 190.0
        self._trades: list[Trade] = []
        self._completed: list[Trade] = []
        self._fills: list[Fill] = []
        self._positions: dict[str, Position] = {}
        self.cash = {"USD": 100_000.0}
        self.placed: list[tuple[Contract, Any]] = []
        self.cancelled: list[int] = []
        self.history: dict[str, list[BarData]] = {}
        self.realtime: dict[str, RealTimeBarList] = {}
        self._ids = itertools.count(1)
        self._exec_ids = itertools.count(1)

    # -- what the adapter calls ---------------------------------------------------------------
    def placeOrder(self, contract: Contract, order: Any) -> Trade:  # noqa: N802 - ib_async API
        order.orderId = next(self._ids)
        order.permId = 9000 + order.orderId
        trade = Trade(contract, order, OrderStatus(orderId=order.orderId,
                                                   status=OrderStatus.PendingSubmit),
                      [], [TradeLogEntry(self.now, OrderStatus.PendingSubmit)])
        self._trades.append(trade)
        self.placed.append((contract, order))
        if self.mode == "reject":
            self.status(trade, "Inactive", message="Order rejected - reason: insufficient "
                                                   "buying power")
        else:
            self.status(trade, "Submitted")
            if self.mode == "fill":
                self.execute(trade, order.totalQuantity / 2)
                self.execute(trade, order.totalQuantity / 2)
        return trade

    def cancelOrder(self, order: Any) -> None:  # noqa: N802
        self.cancelled.append(order.orderId)
        trade = next(t for t in self._trades if t.order.orderId == order.orderId)
        self.status(trade, "PendingCancel")
        self.status(trade, "Cancelled", message="")

    def trades(self) -> list[Trade]:
        return list(self._trades)

    def openTrades(self) -> list[Trade]:  # noqa: N802
        return [t for t in self._trades if t.orderStatus.status in OrderStatus.ActiveStates]

    def reqCompletedOrders(self, apiOnly: bool) -> list[Trade]:  # noqa: N802, N803
        return list(self._completed)

    def fills(self) -> list[Fill]:
        return list(self._fills)

    def positions(self, account: str = "") -> list[Position]:
        return list(self._positions.values())

    def accountValues(self, account: str = "") -> list[AccountValue]:  # noqa: N802
        return [AccountValue("DU123", "TotalCashBalance", str(v), c, "")
                for c, v in self.cash.items()] + [
            AccountValue("DU123", "NetLiquidation", "1", "USD", "")]

    def reqHistoricalData(self, contract: Contract, endDateTime: Any, durationStr: str,  # noqa: N802, N803
                          barSizeSetting: str, whatToShow: str, useRTH: bool,  # noqa: N803
                          formatDate: int = 1, **kw: Any) -> BarDataList:  # noqa: N803
        bars = BarDataList(self.history.get(contract.symbol, []))
        bars.contract, bars.barSizeSetting = contract, barSizeSetting
        return bars

    def reqRealTimeBars(self, contract: Contract, barSize: int, whatToShow: str,  # noqa: N802, N803
                        useRTH: bool, realTimeBarsOptions: Any = None) -> RealTimeBarList:  # noqa: N803
        bars = RealTimeBarList()
        bars.contract, bars.barSize = contract, barSize
        self.realtime[contract.symbol] = bars
        return bars

    def cancelRealTimeBars(self, bars: RealTimeBarList) -> None:  # noqa: N802
        self.realtime = {k: v for k, v in self.realtime.items() if v is not bars}

    def sleep(self, seconds: float = 0.0) -> None:
        pass

    # -- recorded messages, delivered as ib_async's wrapper would -----------------------------
    def status(self, trade: Trade, status: str, *, message: str = "") -> None:
        trade.orderStatus.status = status
        trade.log.append(TradeLogEntry(self.now, status, message))
        if status in OrderStatus.DoneStates and trade not in self._completed:
            self._completed.append(trade)

    def reconnect(self) -> None:
        """A new session: `trades()` knows only open orders again (as after a restart);
        finished ones are available from `reqCompletedOrders`."""
        self._trades = [t for t in self._trades
                        if t.orderStatus.status not in OrderStatus.DoneStates]

    def execute(self, trade: Trade, shares: float, price: float | None = None) -> Fill:
        price = self.fill_price if price is None else price
        st = trade.orderStatus
        cum = st.filled + shares
        avg = (st.avgFillPrice * st.filled + price * shares) / cum
        exec_id = f"0000e0d5.6597{next(self._exec_ids):04d}.01.01"
        execution = Execution(
            execId=exec_id, time=self.now, acctNumber="DU123", exchange="ISLAND",
            side="BOT" if trade.order.action == "BUY" else "SLD", shares=shares, price=price,
            permId=trade.order.permId, clientId=1, orderId=trade.order.orderId, cumQty=cum,
            avgPrice=avg, orderRef=trade.order.orderRef)
        report = CommissionReport(execId=exec_id, commission=round(0.005 * shares, 4),
                                  currency="USD")
        fill = Fill(trade.contract, execution, report, self.now)
        trade.fills.append(fill)
        self._fills.append(fill)
        st.filled, st.remaining, st.avgFillPrice, st.lastFillPrice = (
            cum, trade.order.totalQuantity - cum, avg, price)
        signed = shares if execution.side == "BOT" else -shares
        key = trade.contract.symbol
        old = self._positions.get(key)
        qty = (old.position if old else 0.0) + signed
        self._positions[key] = Position("DU123", trade.contract, qty, avg)
        done = cum >= trade.order.totalQuantity
        self.status(trade, "Filled" if done else "Submitted")
        return fill

    def push_realtime(self, symbol: str, when: datetime, o: float, h: float, lo: float,
                      c: float, v: float) -> None:
        """A 5-second bar as wrapper.realtimeBar builds and announces it."""
        bars = self.realtime[symbol]
        bars.append(RealTimeBar(when, -1, o, h, lo, c, v, (o + c) / 2, 3))
        bars.updateEvent.emit(bars, True)
