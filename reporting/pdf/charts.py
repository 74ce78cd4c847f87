"""Charts drawn into the PDFs with reportlab.graphics (vector, no raster images, no matplotlib).

Each function takes plain numbers (already computed by the engine's metrics helpers) and returns
a `Drawing` sized for the A4 frame. Long series are thinned to at most `MAX_POINTS` points by
taking every k-th point (and always the last), which keeps the file small and is invisible at
print resolution. All text uses the report's embedded font.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence

import numpy as np
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import LineLegend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.lib import colors

from reporting.pdf.common import ACCENT, BENCH, FONT, FONT_BOLD, FRAME_WIDTH, GRID, INK, LOSS, MUTED

MAX_POINTS = 600
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def thin(x: np.ndarray, *ys: np.ndarray, max_points: int = MAX_POINTS) -> list[np.ndarray]:
    """Every k-th point of aligned series so that at most `max_points` remain (last kept)."""
    n = len(x)
    if n <= max_points:
        return [np.asarray(x), *(np.asarray(y) for y in ys)]
    idx = np.unique(np.append(np.arange(0, n, math.ceil(n / max_points)), n - 1))
    return [np.asarray(x)[idx], *(np.asarray(y)[idx] for y in ys)]


def _days(timestamps_ns: np.ndarray) -> np.ndarray:
    return np.asarray(timestamps_ns, dtype=np.int64) / 86_400e9


def _date_label(days: float) -> str:
    return (dt.datetime(1970, 1, 1) + dt.timedelta(days=float(days))).strftime("%Y-%m")


def _day_label(days: float) -> str:
    return (dt.datetime(1970, 1, 1) + dt.timedelta(days=float(days))).strftime("%Y-%m-%d")


def _nice_step(span: float, target: int = 5) -> float:
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _drawing(width: float, height: float) -> Drawing:
    d = Drawing(width, height)
    # The renderer starts every drawing in its default font (Helvetica, not embedded) unless told.
    d.initialFontName = FONT
    return d


def _title(d: Drawing, text: str) -> None:
    d.add(String(0, d.height - 11, text, fontName=FONT_BOLD, fontSize=9, fillColor=INK))


def _line_plot(width: float, height: float, series: Sequence[tuple[np.ndarray, np.ndarray]],
               colours: Sequence[colors.Color], y_format: Callable[[float], str],
               x_is_time: bool = True) -> LinePlot:
    lp = LinePlot()
    lp.x, lp.y = 48, 26
    lp.width, lp.height = width - 60, height - 48
    lp.data = [list(zip(map(float, xs), map(float, ys), strict=True)) for xs, ys in series]
    for i, colour in enumerate(colours):
        lp.lines[i].strokeColor = colour
        lp.lines[i].strokeWidth = 1.1
    all_y = np.concatenate([ys for _, ys in series]) if series else np.zeros(1)
    all_y = all_y[np.isfinite(all_y)]
    lo, hi = (float(all_y.min()), float(all_y.max())) if all_y.size else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    step = _nice_step(hi - lo)
    lp.yValueAxis.valueMin = math.floor(lo / step) * step
    lp.yValueAxis.valueMax = math.ceil(hi / step) * step
    lp.yValueAxis.valueStep = step
    lp.yValueAxis.labelTextFormat = y_format
    lp.yValueAxis.gridStrokeColor = GRID
    lp.yValueAxis.visibleGrid = True
    xs_all = np.concatenate([xs for xs, _ in series])
    x_lo, x_hi = float(xs_all.min()), float(xs_all.max())
    if x_hi == x_lo:
        x_hi = x_lo + 1
    lp.xValueAxis.valueMin, lp.xValueAxis.valueMax = x_lo, x_hi
    lp.xValueAxis.valueSteps = list(np.linspace(x_lo, x_hi, 6))
    # Months label a long run; a run of a few months needs days to tell the ticks apart.
    time_label = _date_label if x_hi - x_lo > 180 else _day_label
    lp.xValueAxis.labelTextFormat = time_label if x_is_time else (lambda v: f"{v:g}")
    for axis in (lp.xValueAxis, lp.yValueAxis):
        axis.labels.fontName = FONT
        axis.labels.fontSize = 7
        axis.labels.fillColor = MUTED
        axis.strokeColor = MUTED
    return lp


def _legend(d: Drawing, items: Sequence[tuple[colors.Color, str]]) -> None:
    legend = LineLegend()
    legend.x, legend.y = d.width - 8, d.height - 6
    legend.alignment = "right"
    legend.boxAnchor = "ne"
    legend.fontName = FONT
    legend.fontSize = 7
    legend.columnMaximum = 1
    legend.deltax = 90
    legend.dx = 14
    legend.colorNamePairs = list(items)
    d.add(legend)


def equity_chart(timestamps_ns: np.ndarray, equity: np.ndarray,
                 benchmark: np.ndarray | None = None, benchmark_name: str = "Benchmark",
                 *, series_name: str = "Strategy", height: float = 190) -> Drawing:
    """Both curves rebased to 1 at the first bar, so they start together."""
    title = "Growth of 1 (strategy vs benchmark)" if benchmark is not None else "Growth of 1"
    eq = np.asarray(equity, dtype=np.float64)
    days = _days(timestamps_ns)
    d = _drawing(FRAME_WIDTH, height)
    _title(d, title)
    parts = [eq / eq[0]]
    colours = [ACCENT]
    legend = [(ACCENT, series_name)]
    if benchmark is not None:
        b = np.asarray(benchmark, dtype=np.float64)
        parts.append(b / b[0])
        colours.append(BENCH)
        legend.append((BENCH, benchmark_name))
    thinned = thin(days, *parts)
    series = [(thinned[0], y) for y in thinned[1:]]
    d.add(_line_plot(d.width, d.height, series, colours, lambda v: f"{v:.2f}"))
    _legend(d, legend)
    return d


def overlay_chart(series: Sequence[tuple[str, np.ndarray, np.ndarray]], *, title: str,
                  height: float = 180) -> Drawing:
    """Several (name, timestamps, values) curves, each rebased to 1 (live vs backtest)."""
    d = _drawing(FRAME_WIDTH, height)
    _title(d, title)
    palette = [ACCENT, BENCH, LOSS]
    plotted = []
    for ts, values in ((s[1], s[2]) for s in series):
        v = np.asarray(values, dtype=np.float64)
        x, y = thin(_days(ts), v / v[0])
        plotted.append((x, y))
    d.add(_line_plot(d.width, d.height, plotted, palette[: len(series)], lambda v: f"{v:.2f}"))
    _legend(d, [(palette[i], s[0]) for i, s in enumerate(series)])
    return d


def underwater_chart(timestamps_ns: np.ndarray, drawdown: np.ndarray,
                     height: float = 150) -> Drawing:
    """The drawdown from the running peak at every bar, filled down from zero."""
    d = _drawing(FRAME_WIDTH, height)
    _title(d, "Underwater (drawdown from the running peak)")
    x, y = thin(_days(timestamps_ns), np.asarray(drawdown, dtype=np.float64))
    lp = _line_plot(d.width, d.height, [(x, y)], [LOSS], lambda v: f"{v * 100:.0f}%")
    lp.yValueAxis.valueMax = 0
    lp.lines[0].inFill = True
    lp.lines[0].fillColor = colors.Color(LOSS.red, LOSS.green, LOSS.blue, alpha=0.35)
    d.add(lp)
    return d


def rolling_chart(timestamps_ns: np.ndarray, values: np.ndarray, *, title: str, percent: bool,
                  colour: colors.Color = ACCENT, height: float = 140) -> Drawing:
    """One rolling statistic (warm-up NaNs left out)."""
    d = _drawing(FRAME_WIDTH, height)
    _title(d, title)
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    if ok.sum() < 2:
        d.add(String(0, height / 2, "Not enough data for this window.", fontName=FONT,
                     fontSize=8, fillColor=MUTED))
        return d
    x, y = thin(_days(np.asarray(timestamps_ns)[ok]), v[ok])
    fmt = (lambda t: f"{t * 100:.0f}%") if percent else (lambda t: f"{t:.1f}")
    d.add(_line_plot(d.width, d.height, [(x, y)], [colour], fmt))
    return d


def histogram_chart(counts: Sequence[int], edges: Sequence[float], *, var_95: float | None,
                    height: float = 160) -> Drawing:
    """Distribution of per-period returns; the bar left of the 95% VaR line is shaded red."""
    d = _drawing(FRAME_WIDTH, height)
    _title(d, "Distribution of per-period returns")
    if not counts:
        return d
    bc = VerticalBarChart()
    bc.x, bc.y = 48, 26
    bc.width, bc.height = d.width - 60, height - 48
    bc.data = [list(map(int, counts))]
    bc.barSpacing = 0
    bc.groupSpacing = 0.5
    bc.bars[0].fillColor = ACCENT
    bc.bars[0].strokeColor = None
    if var_95 is not None:
        mids = (np.asarray(edges[:-1]) + np.asarray(edges[1:])) / 2
        for i, mid in enumerate(mids):
            if mid <= var_95:
                bc.bars[(0, i)].fillColor = LOSS
    n = len(counts)
    label_every = max(1, n // 8)
    bc.categoryAxis.categoryNames = [
        f"{edges[i] * 100:.1f}%" if i % label_every == 0 else "" for i in range(n)]
    bc.valueAxis.valueMin = 0
    bc.valueAxis.labelTextFormat = "%d"
    for axis in (bc.categoryAxis, bc.valueAxis):
        axis.labels.fontName = FONT
        axis.labels.fontSize = 7
        axis.labels.fillColor = MUTED
    d.add(bc)
    return d


def _heat_colour(value: float, scale: float) -> colors.Color:
    t = max(-1.0, min(1.0, value / scale)) if scale > 0 else 0.0
    white = (1.0, 1.0, 1.0)
    target = (0.12, 0.52, 0.29) if t > 0 else (0.75, 0.22, 0.17)
    k = abs(t) * 0.85
    return colors.Color(*(w + (c - w) * k for w, c in zip(white, target, strict=True)))


def heatmap(table: dict[int, list[float | None]], height_per_row: float = 15) -> Drawing:
    """Year x month grid of monthly returns (plus the year's compounded total), green for gains
    and red for losses, with the value printed in each cell."""
    years = sorted(table)
    label_w, cell_h = 34, height_per_row
    cols = 13
    cell_w = (FRAME_WIDTH - label_w) / cols
    height = cell_h * (len(years) + 1) + 16
    d = _drawing(FRAME_WIDTH, height)
    _title(d, "Monthly returns")
    top = height - 16
    for c, name in enumerate((*MONTHS, "Year")):
        d.add(String(label_w + c * cell_w + cell_w / 2, top - cell_h + 4, name,
                     fontName=FONT_BOLD, fontSize=7, fillColor=INK, textAnchor="middle"))
    values = [v for y in years for v in table[y][:12] if v is not None]
    scale = max((abs(v) for v in values), default=0.0)
    for r, year in enumerate(years):
        y0 = top - cell_h * (r + 2)
        d.add(String(0, y0 + 4, str(year), fontName=FONT_BOLD, fontSize=7, fillColor=INK))
        for c in range(cols):
            value = table[year][c]
            x0 = label_w + c * cell_w
            fill = _heat_colour(value, scale) if value is not None and c < 12 else colors.white
            d.add(Rect(x0, y0, cell_w, cell_h, fillColor=fill, strokeColor=GRID,
                       strokeWidth=0.4))
            if value is not None:
                d.add(String(x0 + cell_w / 2, y0 + 4, f"{value * 100 + 0.0:.1f}%".replace("-0.0%", "0.0%"), fontName=FONT,
                             fontSize=6.5, fillColor=INK, textAnchor="middle"))
    d.add(Line(label_w + 12 * cell_w, top - cell_h * (len(years) + 1), label_w + 12 * cell_w,
               top - cell_h, strokeColor=INK, strokeWidth=0.8))
    return d
