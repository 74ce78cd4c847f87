"""The ``nexow tax`` command: outputs, exit codes and one clear message per bad row."""

from __future__ import annotations

import json
from pathlib import Path

from reporting.tax.cli import main

DATA = Path(__file__).parent / "data"
SAMPLE = str(DATA / "tax_trades_sample.csv")
BAD = str(DATA / "tax_trades_bad.csv")


def test_bad_rows_exit_2_with_one_line_each_and_no_traceback(capsys):
    assert main([BAD, "--year", "2024"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert lines[0].endswith("tax_trades_bad.csv: 8 bad rows; nothing was computed")
    assert len(lines) == 9
    assert any("line 4, column 4 (side): unknown side 'bye'" in line for line in lines)
    assert "Traceback" not in err


def test_json_goes_to_stdout(capsys):
    assert main([SAMPLE, "--year", "2024"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # X: Pub 550 wash sale (loss 250 disallowed). BTC: 0.25 of 0.5 bought 2023-02-01 for
    # 11,512.50 → basis 5,756.25; proceeds 10,750 − 8.60 = 10,741.40; gain 4,985.15, long-term
    # (sold 2024-02-02, after 2024-02-01), digital assets → box J. K: 40 × 50 + 1 = 2,001,
    # proceeds 3,199, gain 1,198, box D.
    assert [(r["description"], r["box"], r["gain"], r["code"]) for r in doc["rows"]] == [
        ("100 X", "A", "0.00", "W"), ("40 K", "D", "1198.00", ""),
        ("0.25 BTC", "J", "4985.15", "")]
    assert doc["schedule_d"]["line_16"] == "6183.15"


def test_method_and_format_options(capsys, tmp_path):
    out = tmp_path / "rows.csv"
    assert main([SAMPLE, "--year", "2024", "--method", "lifo", "--format", "csv",
                 "--out", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert out.read_text().splitlines()[0].startswith("part,box,description,quantity")


def test_average_cost_on_securities_is_refused_with_exit_2(capsys):
    assert main([SAMPLE, "--year", "2024", "--method", "average"]) == 2
    assert "average cost is allowed only for fund shares and digital assets" in (
        capsys.readouterr().err)


def test_pdf_needs_an_output_file(capsys):
    assert main([SAMPLE, "--year", "2024", "--format", "pdf"]) == 2
    assert "--out" in capsys.readouterr().err


def test_missing_file_exits_2(capsys, tmp_path):
    assert main([str(tmp_path / "nope.csv"), "--year", "2024"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_uk_jurisdiction_uses_the_april_tax_year(capsys):
    assert main([SAMPLE, "--year", "2024", "--jurisdiction", "uk"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # Only K's 2024-07-01 disposal falls in 6 April 2024 – 5 April 2025.
    assert doc["tax_year"] == "2024-25"
    assert [(d["symbol"], d["gain"]) for d in doc["disposals"]] == [("K", "1198.00")]
