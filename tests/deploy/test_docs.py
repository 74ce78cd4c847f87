"""docs/deployment.md: its table of environment variables is exactly what settings reads."""

from __future__ import annotations

import re

from tests.deploy.manifests import ROOT, settings_env_names

DOC = ROOT / "docs" / "deployment.md"


def documented_variables(markdown: str) -> set[str]:
    """The variable names in the first column of the "## Environment variables" table."""
    section = markdown.split("\n## Environment variables\n", 1)[1]
    section = re.split(r"\n#{2,3} ", section, maxsplit=1)[0]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, flags=re.MULTILINE))


def test_every_variable_settings_reads_is_documented_and_nothing_else():
    documented = documented_variables(DOC.read_text())
    assert sorted(settings_env_names() - documented) == []
    assert sorted(documented - settings_env_names()) == []


def test_a_missing_row_is_noticed():
    markdown = DOC.read_text().replace("| `REDIS_URL` |", "| REDIS_URL |")
    assert "REDIS_URL" not in documented_variables(markdown)
    assert "DATABASE_URL" in documented_variables(markdown)
