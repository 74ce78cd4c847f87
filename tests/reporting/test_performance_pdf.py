"""The performance report PDF: what a reader must find in it, its layout and its fonts."""

from __future__ import annotations

import io

import numpy as np
import pypdf
import pytest

from reporting.pdf.common import fmt_money, fmt_pct, fmt_ratio
from reporting.pdf.performance import (
    METRIC_ROWS,
    key_metrics,
    performance_pdf,
    performance_story,
)
from tests.reporting.samples import performance_input
from trading.engine.robustness import robustness_report


@pytest.fixture(scope="module")
def report():
    data = performance_input(live=True)
    data.robustness = robustness_report(data.equity, trade_pnl=np.array([t.pnl for t in
                                                                         data.trades]),
                                        n_params=2, n_sims=50, seed=1)
    pdf = performance_pdf(data)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    _, metrics = performance_story(data)
    return data, pdf, reader, text, metrics


def test_formatting_rules():
    assert fmt_pct(0.12345) == "12.35%"
    assert fmt_pct(None) == "n/a"
    assert fmt_ratio(1.005) == "1.00"  # float 1.005 is 1.00499999...: rounded half-even binary
    assert fmt_ratio(-0.5) == "-0.50"
    assert fmt_money(1234.5) == "1,234.50"
    assert fmt_money(-0.004) == "0.00"  # never "-0.00"
    assert fmt_pct(-0.00001) == "0.00%" and fmt_ratio(-0.001) == "0.00"


def test_cover_names_the_organisation_subject_and_period(report):
    data, _, reader, text, _ = report
    first = reader.pages[0].extract_text()
    assert "Acme Capital LLP" in first
    assert "Simulation 7: SMA crossover on ACME" in first
    # 400 daily bars from 2023-01-02: the last is 2024-02-05.
    assert "Period: 2023-01-02 to 2024-02-05" in first


def test_every_key_metric_label_and_value_is_printed(report):
    _, _, _, text, metrics = report
    flat = " ".join(text.split())
    for label, value in key_metrics(metrics):
        assert label in flat, label
        assert value in flat, (label, value)
    # Spot-check one by hand: total return is the last equity over the first, minus one.
    data = report[0]
    assert fmt_pct(data.equity[-1] / data.equity[0] - 1) in flat
    assert len(METRIC_ROWS) == 16


def test_sections_and_appendix_are_present(report):
    _, _, _, text, _ = report
    for heading in ("Key metrics", "Growth of 1 (strategy vs benchmark)", "Underwater",
                    "Monthly returns", "Rolling Sharpe ratio (63 periods)", "Rolling volatility",
                    "Distribution of per-period returns", "Trades", "Largest 10 trades",
                    "Time- and money-weighted returns", "Robustness checks", "Live vs backtest",
                    "Methodology", "ddof = 1", "rf_p = (1 + rf) ^ (1 / ppy) - 1"):
        assert heading in text, heading


def test_page_count_and_footer_numbering(report):
    _, _, reader, _, _ = report
    n = len(reader.pages)
    assert 5 <= n <= 8
    assert f"Page {n} of {n}" in reader.pages[-1].extract_text()


def test_every_font_is_embedded(report):
    _, _, reader, _, _ = report
    seen = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            seen.add(str(font["/BaseFont"]))
            descriptor = font.get("/FontDescriptor")
            if descriptor is None and "/DescendantFonts" in font:
                descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            assert descriptor is not None, font["/BaseFont"]
            descriptor = descriptor.get_object()
            assert any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")), \
                f"{font['/BaseFont']} is not embedded"
    assert any("BitstreamVeraSans" in name for name in seen)


def test_a_run_without_trades_or_benchmark_still_renders_with_na():
    data = performance_input(n=60, trades=0)
    data.benchmark_equity = None
    data.benchmark_name = None
    text = "\n".join(p.extract_text() for p in
                     pypdf.PdfReader(io.BytesIO(performance_pdf(data))).pages)
    flat = " ".join(text.split())
    assert "Beta n/a" in flat and "Win rate (trades) n/a" in flat
    assert "annualised figures" in text  # the engine's short-sample warning is shown
