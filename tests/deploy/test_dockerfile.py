"""Dockerfile and .dockerignore: a slim Python 3.11 image that installs the project from
pyproject.toml, collects static files at build time without keeping a secret, runs as a non-root
user, exposes 8000 with a health check and serves with uvicorn, shutting down gracefully.

The Dockerfile is read with BuildKit's own parser (the ``dockerfile`` package).
"""

from __future__ import annotations

import fnmatch
import glob
import re
import tomllib
from pathlib import Path

import pytest

from tests.deploy.manifests import (
    CLI,
    DOCKERIGNORE,
    ROOT,
    dockerfile_commands,
    env_pairs,
    exposed_ports,
    final_user,
    is_root,
    option_value,
    stages,
)

KNOWN_INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
                      "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK",
                      "SHELL"}


@pytest.fixture(scope="module")
def commands():
    return dockerfile_commands()


def test_every_instruction_is_a_dockerfile_instruction(commands):
    assert {c.cmd for c in commands} <= KNOWN_INSTRUCTIONS
    assert commands[0].cmd == "FROM"


def test_every_stage_starts_from_python_3_11_slim(commands):
    bases = [stage[0].value[0] for stage in stages(commands)]
    assert bases and set(bases) == {"python:3.11-slim"}


def test_final_stage_runs_as_a_non_root_user_created_for_it(commands):
    user = final_user(commands)
    assert not is_root(user)
    uid = user.split(":")[0]
    created = " ".join(c.value[0] for c in stages(commands)[-1] if c.cmd == "RUN")
    assert re.search(rf"useradd\b[^&]*--uid {uid}\b", created)


@pytest.mark.parametrize(
    ("text", "root"),
    [
        ("FROM python:3.11-slim\nCMD [\"x\"]\n", True),                       # no USER at all
        ("FROM python:3.11-slim\nUSER app\nUSER root\n", True),             # switched back
        ("FROM python:3.11-slim\nUSER 0:0\n", True),
        ("FROM a AS b\nUSER app\nFROM python:3.11-slim\n", True),           # only the build stage
        ("FROM python:3.11-slim\nUSER 10001:10001\n", False),
    ],
)
def test_the_non_root_check_catches_images_that_end_as_root(text, root):
    assert is_root(final_user(dockerfile_commands(text))) is root


def test_project_is_installed_from_pyproject_without_dev_extras(commands):
    runs = [c.value[0] for c in commands if c.cmd == "RUN"]
    installs = [r for r in runs if re.search(r"\bpip install\b", r)]
    assert any(re.search(r"\bpip install \.(\s|$)", r) for r in installs)
    copied = {src for c in commands if c.cmd == "COPY" and not c.flags for src in c.value[:-1]}
    assert "pyproject.toml" in copied
    for run in installs:
        assert "[dev" not in run and "[bench" not in run
        assert not re.search(r"\s(-e|--editable)\s", run)


def test_every_copied_path_exists_and_is_not_ignored_by_dockerignore(commands):
    ignored = _dockerignore_patterns()
    for command in commands:
        if command.cmd != "COPY" or command.flags:  # COPY --from copies between stages
            continue
        for source in command.value[:-1]:
            assert (ROOT / source).exists(), source
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source


def test_static_files_are_collected_at_build_time_with_debug_on_for_that_step_only(commands):
    final = stages(commands)[-1]
    (collect,) = [c.value[0] for c in final if c.cmd == "RUN" and "collectstatic" in c.value[0]]
    assert re.match(r"DEBUG=1 SECRET_KEY=\S+ ", collect)
    # No ENV of any stage carries a SECRET_KEY into the image, and the image's default is DEBUG=0.
    for command in commands:
        if command.cmd == "ENV":
            assert "SECRET_KEY" not in env_pairs(command)
    runtime_env = {}
    for command in final:
        if command.cmd == "ENV":
            runtime_env.update(env_pairs(command))
    assert runtime_env["DEBUG"] == "0"
    assert runtime_env["STATIC_ROOT"]
    # collectstatic runs before USER: the collected files stay root-owned, read-only for the app.
    order = [c.cmd if "collectstatic" not in c.original else "COLLECTSTATIC" for c in final]
    assert order.index("COLLECTSTATIC") < order.index("USER")

def test_image_exposes_8000_and_checks_healthz(commands):
    assert exposed_ports(commands) == {8000}
    (check,) = [c for c in commands if c.cmd == "HEALTHCHECK"]
    assert check.json and check.value[0] == "CMD"
    assert "http://127.0.0.1:8000/healthz" in " ".join(check.value)


def test_default_command_serves_uvicorn_on_all_interfaces_with_graceful_shutdown(commands):
    (cmd,) = [c for c in commands if c.cmd == "CMD"]
    # Exec form: uvicorn is PID 1 and gets SIGTERM itself, not a shell that swallows it.
    assert cmd.json
    argv = list(cmd.value)
    assert argv[:2] == ["uvicorn", "nexow_site.asgi:application"]
    assert option_value(argv, "--host") == "0.0.0.0"
    assert option_value(argv, "--port") == "8000"
    assert 0 < int(option_value(argv, "--timeout-graceful-shutdown")) < 30
    assert not any(c.cmd == "ENTRYPOINT" for c in commands)


def test_default_command_matches_how_nexow_start_runs_the_web_process(commands):
    (cmd,) = [c for c in commands if c.cmd == "CMD"]
    argv = list(cmd.value)
    cli = CLI.read_text()
    for flag in ("--lifespan", "--ws"):
        started_with = re.search(rf'"{flag}", "([^"]+)"', cli)
        assert started_with, flag
        assert option_value(argv, flag) == started_with.group(1)


def test_shell_form_command_is_told_apart_from_exec_form():
    (cmd,) = [c for c in dockerfile_commands("FROM x\nCMD uvicorn app\n") if c.cmd == "CMD"]
    assert not cmd.json


def _dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("path", [".env", ".env.production", ".venv", "var", ".git"])
def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context(path):
    assert any(fnmatch.fnmatch(path, pattern) for pattern in _dockerignore_patterns())



def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_that_pyproject_installs_is_copied_into_the_build(commands):
    include = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    top_level = {pattern.rstrip("*") for pattern in include}
    build = stages(commands)[0]
    copied = {src for c in build if c.cmd == "COPY" for src in c.value[:-1]}
    # Without its sources in the build context, `pip install .` would silently leave a package out.
    assert top_level <= copied
    assert {"pyproject.toml", "README.md"} <= copied  # pyproject's readme is part of the metadata


def _installed_data_files(package_data: dict[str, list[str]], top_level: set[str]) -> set[Path]:
    included: set[Path] = set()
    for init in (p for name in top_level for p in (ROOT / name).rglob("__init__.py")):
        package = init.parent
        for pattern in package_data.get("*", []):
            included |= {package / hit for hit in
                         glob.glob(pattern, root_dir=package, recursive=True)}
    return {p for p in included if p.is_file()}


def test_every_data_file_of_the_packages_is_installed_into_the_image():
    project = _pyproject()
    top_level = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    installed = _installed_data_files(project["tool"]["setuptools"]["package-data"], top_level)
    data_files = {p for name in top_level for p in (ROOT / name).rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc")
                  and "__pycache__" not in p.parts}
    # Templates, static files and JSON are package data; any other file kind needs a pattern in
    # pyproject.toml or it is missing from the installed image.
    assert sorted(str(p.relative_to(ROOT)) for p in data_files - installed) == []
    assert any("templates" in p.parts for p in installed)


def test_a_data_file_outside_the_package_data_patterns_is_noticed():
    installed = _installed_data_files({"*": ["templates/**/*"]}, {"nexow_site"})
    assert not any("static" in p.parts for p in installed)
