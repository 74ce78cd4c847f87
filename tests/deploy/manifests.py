"""Readers and checks shared by the deployment-file tests.

They load the Dockerfile (with BuildKit's own parser, the ``dockerfile`` package), the compose file
(checked against the Compose Specification JSON schema that ``check-jsonschema`` ships) and the
Kubernetes manifests (checked by ``kubernetes-validate``, which ships the API schemas), and they
list the environment variables that ``nexow_site/settings.py`` reads, so that a deployment file
can set nothing the platform ignores. Everything here works offline.
"""

from __future__ import annotations

import ast
import importlib.resources
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import dockerfile
import yaml

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "nexow_site" / "settings.py"
CLI = ROOT / "nexow_site" / "cli.py"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S = ROOT / "k8s"
SECRET_EXAMPLE = K8S / "secret.example.yaml"

# The processes that run the platform's code (and so receive its settings) in compose.
APP_SERVICES = ("migrate", "web", "worker", "beat")
# Without these the platform either refuses to start (DEBUG off) or silently runs embedded.
REQUIRED_PRODUCTION_VARIABLES = {"SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL",
                                 "NEXOW_CREDENTIALS_KEY"}

_ENV_READERS = {"str", "bool", "int", "float", "list", "tuple", "dict", "json", "url", "path",
                "db_url", "db_url_config", "cache_url", "email_url", "search_url", "get_value"}


# --- settings ---------------------------------------------------------------------------------
def env_names_read_by(source: str) -> set[str]:
    """Names of the environment variables a settings module reads.

    Recognised: ``env("X")``, ``env.<reader>("X", ...)`` (django-environ), ``os.environ["X"]``,
    ``os.environ.get("X")`` and ``os.getenv("X")`` with a literal name.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and _is_os_environ(node.value):
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                names.add(node.slice.value)
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "env":
            names.add(first.value)
        elif isinstance(func, ast.Attribute):
            owner = func.value
            if isinstance(owner, ast.Name) and owner.id == "env" and func.attr in _ENV_READERS:
                names.add(first.value)
            elif func.attr == "get" and _is_os_environ(owner):
                names.add(first.value)
            elif func.attr == "getenv" and isinstance(owner, ast.Name) and owner.id == "os":
                names.add(first.value)
    return names


def _is_os_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ"
            and isinstance(node.value, ast.Name) and node.value.id == "os")


@cache
def settings_env_names() -> frozenset[str]:
    return frozenset(env_names_read_by(SETTINGS.read_text()))


def unread_variables(names: Iterable[str], read: Iterable[str] | None = None) -> list[str]:
    """The names in ``names`` that settings never reads (sorted): each one is a deployment bug."""
    known = set(settings_env_names() if read is None else read)
    return sorted(set(names) - known)


# --- compose ----------------------------------------------------------------------------------
@cache
def compose_schema() -> dict[str, Any]:
    path = importlib.resources.files("check_jsonschema") / "builtin_schemas" / "vendor"
    return json.loads((path / "compose-spec.json").read_text(encoding="utf-8"))


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def compose_environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a mapping, whichever of the two spec forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})"
)


class MissingVariable(ValueError):
    """A ``${NAME:?message}`` interpolation whose variable is unset, as compose reports it."""


def interpolate(value: str, environ: Mapping[str, str]) -> str:
    """Compose-file interpolation (the subset of the spec these files use).

    ``${X}``, ``${X:-default}`` / ``${X-default}``, ``${X:?error}`` / ``${X?error}`` and ``$$``.
    """

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"]
        present = name in environ and (environ[name] != "" or not (op or "").startswith(":"))
        if present:
            return environ[name]
        if op in (":?", "?"):
            raise MissingVariable(f"{name}: {arg}")
        if op in (":-", "-"):
            return arg
        return ""

    return _INTERPOLATION.sub(replace, value)


# --- Kubernetes -------------------------------------------------------------------------------
def manifest_paths() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def load_manifests(paths: Iterable[Path] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    objects = []
    for path in manifest_paths() if paths is None else paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                objects.append((path, doc))
    return objects


def load_kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def find_object(kind: str, name: str) -> dict[str, Any]:
    for _, obj in load_manifests():
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise LookupError(f"no {kind} named {name} under k8s/")


def pod_spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def all_containers(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def workloads() -> list[dict[str, Any]]:
    return [obj for _, obj in load_manifests() if obj["kind"] in ("Deployment", "Job")]


def container_env_names(container: Mapping[str, Any],
                        sources: Mapping[tuple[str, str], Iterable[str]]) -> set[str]:
    """Every variable a container receives: its ``env`` plus the keys of its ``envFrom`` sources.

    ``sources`` maps (kind, name) of ConfigMaps and Secrets to their keys; a reference to a
    source that does not exist raises, as the kubelet would refuse to start the pod.
    """
    names = {item["name"] for item in container.get("env", [])}
    for ref in container.get("envFrom", []):
        if "configMapRef" in ref:
            key = ("ConfigMap", ref["configMapRef"]["name"])
        else:
            key = ("Secret", ref["secretRef"]["name"])
        if key not in sources:
            raise LookupError(f"container {container['name']} reads {key[0]} {key[1]}, "
                              "which no manifest defines")
        names |= set(sources[key])
    return names


def env_sources() -> dict[tuple[str, str], list[str]]:
    """Keys of the ConfigMap and of the (example) Secret the workloads read."""
    sources: dict[tuple[str, str], list[str]] = {}
    for _, obj in load_manifests():
        if obj["kind"] == "ConfigMap":
            sources[("ConfigMap", obj["metadata"]["name"])] = list(obj.get("data", {}))
        elif obj["kind"] == "Secret":
            keys = [*obj.get("stringData", {}), *obj.get("data", {})]
            sources[("Secret", obj["metadata"]["name"])] = keys
    return sources


# --- Dockerfile -------------------------------------------------------------------------------
def dockerfile_commands(text: str | None = None) -> tuple[dockerfile.Command, ...]:
    return dockerfile.parse_string(DOCKERFILE.read_text() if text is None else text)


def stages(commands: Iterable[dockerfile.Command]) -> list[list[dockerfile.Command]]:
    """The build stages, each starting with its FROM."""
    result: list[list[dockerfile.Command]] = []
    for command in commands:
        if command.cmd == "FROM":
            result.append([])
        if result:
            result[-1].append(command)
    return result


def env_pairs(command: dockerfile.Command) -> dict[str, str]:
    values = list(command.value)
    return dict(zip(values[0::2], values[1::2], strict=True))


def final_user(commands: Iterable[dockerfile.Command]) -> str | None:
    """The user the final stage's CMD runs as (None: the base image's default, root)."""
    user = None
    for command in stages(commands)[-1]:
        if command.cmd == "USER":
            user = command.value[0]
    return user


def is_root(user: str | None) -> bool:
    if user is None:
        return True
    name = user.split(":", 1)[0]
    return name in ("root", "0")


def exposed_ports(commands: Iterable[dockerfile.Command]) -> set[int]:
    ports = set()
    for command in stages(commands)[-1]:
        if command.cmd == "EXPOSE":
            ports |= {int(port.split("/")[0]) for port in command.value}
    return ports


def cli_worker_queues() -> str:
    """The queues ``nexow start`` gives its Celery worker (nexow_site/cli.py)."""
    match = re.search(r'"-Q",\s*"([^"]+)"', CLI.read_text())
    if match is None:
        raise LookupError("nexow_site/cli.py no longer names the worker's queues with -Q")
    return match.group(1)


def option_value(argv: list[str], option: str) -> str:
    """The value of ``option`` in an argument vector (``--opt value`` or ``--opt=value``)."""
    for i, arg in enumerate(argv):
        if arg == option:
            return argv[i + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    raise LookupError(f"{option} not in {argv}")


# --- settings under a deployment's environment ---------------------------------------------------
_SUMMARY = """
import json
from nexow_site import settings as s
db = s.DATABASES["default"]
print(json.dumps({
    "DEBUG": s.DEBUG, "RUN_MODE": s.RUN_MODE, "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "DB_ENGINE": db["ENGINE"], "DB_HOST": db.get("HOST"), "DB_NAME": db.get("NAME"),
    "CELERY_BROKER_URL": s.CELERY_BROKER_URL, "EMAIL_BACKEND": s.EMAIL_BACKEND,
    "EMAIL_HOST": getattr(s, "EMAIL_HOST", None), "EMAIL_PORT": getattr(s, "EMAIL_PORT", None),
    "LOG_FORMAT": s.LOG_FORMAT, "SITE_URL": s.SITE_URL,
}))
"""


def load_settings_with(environ: Mapping[str, str], var_dir: Path) -> subprocess.CompletedProcess:
    """Imports the settings in a fresh interpreter given exactly ``environ`` (plus PATH/HOME).

    Prints a JSON summary on success; settings that refuse to start exit 2 with one line on stderr.
    """
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(var_dir),
           "NEXOW_VAR_DIR": str(var_dir), **environ}
    return subprocess.run([sys.executable, "-c", _SUMMARY], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
