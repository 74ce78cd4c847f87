"""docker-compose.yml: the full stack is well-formed, wired in the right order and configured only
with variables the platform reads.

The file is checked against the Compose Specification JSON schema (shipped by check-jsonschema),
then service by service; no container engine is needed.
"""

from __future__ import annotations

import copy
import json
import re
import secrets

import jsonschema
import pytest
from cryptography.fernet import Fernet

from tests.deploy.manifests import (
    APP_SERVICES,
    REQUIRED_PRODUCTION_VARIABLES,
    MissingVariable,
    cli_worker_queues,
    compose_environment,
    compose_schema,
    dockerfile_commands,
    exposed_ports,
    interpolate,
    load_compose,
    load_settings_with,
    option_value,
    unread_variables,
)


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = compose_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _schema_errors(validator, document) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)]


def test_compose_file_conforms_to_the_compose_specification_schema(compose, validator):
    assert _schema_errors(validator, compose) == []


@pytest.mark.parametrize(
    ("service", "change"),
    [
        ("web", {"stop_grace": "30s"}),               # misspelt key
        ("web", {"ports": "8000:8000"}),              # a list, not a string
        ("postgres", {"healthcheck": {"test": ["CMD", "true"], "retry": 3}}),  # "retries"
        ("web", {"depends_on": {"migrate": {"condition": "service_finished"}}}),
    ],
)
def test_schema_check_rejects_a_broken_copy_of_the_file(compose, validator, service, change):
    broken = copy.deepcopy(compose)
    broken["services"][service].update(change)
    assert _schema_errors(validator, broken) != []


def test_stack_has_database_cache_mail_catcher_migration_and_the_three_processes(compose):
    assert set(compose["services"]) == {
        "postgres", "redis", "mailpit", "migrate", "web", "worker", "beat"}


def test_postgres_is_version_16_checked_with_pg_isready_and_kept_on_a_volume(compose):
    postgres = compose["services"]["postgres"]
    assert re.fullmatch(r"postgres:16(\.\d+)?(-\w+)?", postgres["image"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume = postgres["volumes"][0].split(":")
    assert volume[1] == "/var/lib/postgresql/data"
    assert volume[0] in compose["volumes"]


def test_redis_is_version_7_checked_with_ping(compose):
    redis = compose["services"]["redis"]
    assert re.fullmatch(r"redis:7(\.\d+)*(-\w+)?", redis["image"])
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_mail_catcher_receives_the_platforms_smtp_mail_and_shows_it_on_8025(compose):
    mailpit = compose["services"]["mailpit"]
    assert mailpit["image"].startswith("axllent/mailpit")
    assert "127.0.0.1:8025:8025" in mailpit["ports"]
    for name in APP_SERVICES:
        assert compose_environment(compose["services"][name])["EMAIL_URL"] == "smtp://mailpit:1025"


def test_migration_runs_once_postgres_is_healthy(compose):
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["nexow", "manage", "migrate", "--noinput"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"


@pytest.mark.parametrize("name", ["web", "worker", "beat"])
def test_processes_start_only_after_the_migration_completed_successfully(compose, name):
    depends = compose["services"][name]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_application_services_set_only_variables_that_settings_reads(compose, name):
    assert unread_variables(compose_environment(compose["services"][name])) == []


def test_a_variable_that_settings_never_reads_is_reported(compose):
    environment = compose_environment(compose["services"]["web"])
    environment["DJANGO_DEBUG"] = "0"  # a plausible typo for DEBUG: silently ignored at run time
    assert unread_variables(environment) == ["DJANGO_DEBUG"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_application_services_get_the_production_variables_with_debug_off(compose, name):
    environment = compose_environment(compose["services"][name])
    assert REQUIRED_PRODUCTION_VARIABLES <= set(environment)
    assert environment["DEBUG"] == "0"
    assert environment["LOG_FORMAT"] == "json"


def test_secrets_come_from_the_operator_and_compose_refuses_to_start_without_them(compose):
    environment = compose_environment(compose["services"]["web"])
    # The mandatory-value form ${NAME:?message} and no literal fallback.
    assert re.fullmatch(r"\$\{SECRET_KEY:\?[^}]+\}", environment["SECRET_KEY"])
    with pytest.raises(MissingVariable, match="SECRET_KEY"):
        interpolate(environment["SECRET_KEY"], {"POSTGRES_PASSWORD": "pw"})
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        interpolate(environment["DATABASE_URL"], {"SECRET_KEY": "k" * 50})
    assert re.fullmatch(r"\$\{NEXOW_CREDENTIALS_KEY:\?[^}]+\}",
                        environment["NEXOW_CREDENTIALS_KEY"])
    with pytest.raises(MissingVariable, match="NEXOW_CREDENTIALS_KEY"):
        interpolate(environment["NEXOW_CREDENTIALS_KEY"], {"SECRET_KEY": "k" * 50})


def test_settings_accept_the_compose_environment_and_run_in_services_mode(compose, tmp_path):
    operator = {"SECRET_KEY": secrets.token_urlsafe(50), "POSTGRES_PASSWORD": "s3cret",
                "NEXOW_CREDENTIALS_KEY": Fernet.generate_key().decode()}
    environment = {key: interpolate(value, operator)
                   for key, value in compose_environment(compose["services"]["web"]).items()}
    result = load_settings_with(environment, tmp_path)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["DEBUG"] is False
    assert loaded["RUN_MODE"] == "services"
    assert loaded["DB_ENGINE"] == "django.db.backends.postgresql"
    assert (loaded["DB_HOST"], loaded["DB_NAME"]) == ("postgres", "nexow")
    assert loaded["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    assert loaded["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (loaded["EMAIL_HOST"], loaded["EMAIL_PORT"]) == ("mailpit", 1025)
    # The health checks send "Host: localhost": it must be an allowed host.
    assert "localhost" in loaded["ALLOWED_HOSTS"]


def test_web_publishes_the_port_the_image_exposes_and_checks_readyz(compose):
    web = compose["services"]["web"]
    published = {int(port.rsplit(":", 1)[1]) for port in web["ports"]}
    assert published == exposed_ports(dockerfile_commands()) == {8000}
    probe = " ".join(web["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/readyz" in probe
    assert "'Host': 'localhost'" in probe


def _seconds(duration: str) -> int:
    # Compose durations used here: "90s", "2m", "1m30s".
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert parts and duration, duration
    return int(parts[1] or 0) * 60 + int(parts[2] or 0)


def test_web_stop_grace_period_outlasts_uvicorns_graceful_shutdown(compose):
    cmd = next(c for c in dockerfile_commands() if c.cmd == "CMD")
    graceful = int(option_value(list(cmd.value), "--timeout-graceful-shutdown"))
    # 30 s grace for a 25 s drain: SIGKILL never cuts a request uvicorn is still finishing.
    assert _seconds(compose["services"]["web"]["stop_grace_period"]) > graceful


def test_worker_gets_time_to_finish_running_tasks(compose):
    assert _seconds(compose["services"]["worker"]["stop_grace_period"]) >= 60


def test_worker_consumes_the_same_queues_as_nexow_start(compose):
    command = compose["services"]["worker"]["command"]
    assert command[:4] == ["celery", "-A", "nexow_site", "worker"]
    assert option_value(command, "-Q") == cli_worker_queues() == "default,sims,live,reports"
    assert "celery -A nexow_site inspect ping" in compose["services"]["worker"]["healthcheck"]["test"][1]


def test_beat_runs_once_and_has_no_http_health_check(compose):
    beat = compose["services"]["beat"]
    assert beat["command"][:4] == ["celery", "-A", "nexow_site", "beat"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert "scale" not in beat
    # The image's HEALTHCHECK probes the web port, which beat does not open.
    assert beat["healthcheck"] == {"disable": True}


def test_application_services_share_one_image_built_from_this_repository(compose):
    images = {compose["services"][name]["image"] for name in APP_SERVICES}
    assert images == {"nexow:local"}
    for name in APP_SERVICES:
        assert compose["services"][name]["build"] == {"context": ".", "dockerfile": "Dockerfile"}


def test_only_web_and_mail_ui_are_published_and_only_on_loopback(compose):
    published = {name: service["ports"] for name, service in compose["services"].items()
                 if "ports" in service}
    assert published == {"web": ["127.0.0.1:8000:8000"], "mailpit": ["127.0.0.1:8025:8025"]}


@pytest.mark.parametrize(
    ("template", "environ", "expected"),
    [
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),        # ":-" treats empty as unset
        ("${A-x}", {"A": ""}, ""),          # "-" only replaces an unset variable
        ("${A}/$$HOME", {"A": "a"}, "a/$HOME"),
        ("pre-${A:?boom}-post", {"A": "v"}, "pre-v-post"),
    ],
)
def test_interpolation_follows_the_compose_rules(template, environ, expected):
    assert interpolate(template, environ) == expected
