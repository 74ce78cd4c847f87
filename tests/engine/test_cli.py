"""The `nexow backtest` command line: results, JSON output and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trading.engine.cli import main
from trading.engine.data import write_csv
from trading.engine.synthetic import gbm

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    return write_csv(gbm(2_000, seed=5), tmp_path_factory.mktemp("cli") / "bars.csv")


def test_backtest_writes_json_and_prints_a_summary(csv_path, tmp_path, capsys):
    out = tmp_path / "out.json"
    code = main(["--data", str(csv_path), "--strategy", "sma_cross", "-p", "fast=10", "-p",
                 "slow=50", "--cash", "100000", "--commission-bps", "10", "--sizing", "all-cash",
                 "--whole-units", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result) >= {"metrics", "trades", "fills", "equity"}
    assert len(result["equity"]) == 2_000
    assert result["fingerprint"]["costs"]["commission"]["rate"] == 0.001
    printed = capsys.readouterr().out
    assert "final equity" in printed and result["result_hash"] in printed


def test_same_command_twice_gives_identical_bytes(csv_path, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for out in (a, b):
        assert main(["--data", str(csv_path), "--strategy", "sma_cross", "--json", str(out),
                     "--quiet"]) == 0
    assert a.read_bytes() == b.read_bytes()


def _error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_missing_file(capsys):
    err = _error(["--data", "/nonexistent/bars.csv", "--strategy", "sma_cross"], capsys)
    assert "data file '/nonexistent/bars.csv' not found" in err


def test_bad_rows_are_named_by_line_and_column(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n"
                   "2024-01-01T00:00:00Z,10,11,9,10,1\n"
                   "2024-01-01T00:01:00Z,10,9.5,9,10,1\n")
    err = _error(["--data", str(bad), "--strategy", "sma_cross"], capsys)
    assert 'line 3, column "high": high 9.5 is below open 10.0' in err


def test_unknown_strategy(csv_path, capsys):
    err = _error(["--data", str(csv_path), "--strategy", "nope"], capsys)
    assert "unknown strategy 'nope'" in err and "sma_cross" in err


@pytest.mark.parametrize("param, message", [
    ("fast=ten", "parameter 'fast': expected int, got 'ten'"),
    ("speed=3", "parameter 'speed': unknown parameter"),
    ("fast", "bad -p value 'fast': expected NAME=VALUE"),
    ("fast=0", "parameter 'fast': must be >= 1"),
])
def test_bad_parameter(csv_path, capsys, param, message):
    err = _error(["--data", str(csv_path), "--strategy", "sma_cross", "-p", param], capsys)
    assert message in err


def test_bad_option_value(csv_path, capsys):
    err = _error(["--data", str(csv_path), "--strategy", "sma_cross", "--cash", "lots"], capsys)
    assert "--cash" in err


def test_runs_as_a_subprocess(csv_path):
    proc = subprocess.run(
        [sys.executable, "-m", "trading.engine.cli", "--data", str(csv_path), "--strategy",
         "sma_cross", "-p", "slow=oops"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "nexow backtest: error: sma_cross: parameter 'slow': expected int, got 'oops'")


def test_list_strategies(capsys):
    assert main(["--list-strategies"]) == 0
    out = capsys.readouterr().out
    assert "sma_cross" in out and "fast=10" in out and "market_making" in out
