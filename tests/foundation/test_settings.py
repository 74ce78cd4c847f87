"""Production mode (DEBUG off) refuses insecure configuration with one line naming the variable."""

import subprocess

import pytest

from tests.support.procs import PY, ROOT, base_env

GOOD_KEY = "k3Y-" + "x7Qp2Lm9Zr4Tv8Wn1Bc6Hd5Fg0Js3Ka" * 2
FERNET_KEY = "fY9lW2b1zq3-ZB1kQx0m6v8u0c2n4r6t8w0y2A4C6E8="  # urlsafe base64 of 32 bytes


def load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: None for k in ("SECRET_KEY", "ALLOWED_HOSTS", "CORS_ALLOWED_ORIGINS", "DEBUG",
                               "CORS_ALLOW_ALL_ORIGINS")}
    clean["NEXOW_CREDENTIALS_KEY"] = FERNET_KEY
    clean.update(env)
    return subprocess.run([PY, "-c", "import django; django.setup(); print('loaded')"],
                          cwd=ROOT, env=base_env(**clean), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DEBUG": "0", "ALLOWED_HOSTS": "nexow.example"}, "SECRET_KEY is not set"),
        ({"DEBUG": "0", "SECRET_KEY": "django-insecure-" + "a" * 50, "ALLOWED_HOSTS": "x.example"},
         "SECRET_KEY is insecure"),
        ({"DEBUG": "0", "SECRET_KEY": "short", "ALLOWED_HOSTS": "x.example"}, "SECRET_KEY is insecure"),
        ({"DEBUG": "0", "SECRET_KEY": GOOD_KEY}, "ALLOWED_HOSTS is empty"),
        ({"DEBUG": "0", "SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS contains a wildcard"),
        ({"DEBUG": "0", "SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "x.example",
          "CORS_ALLOWED_ORIGINS": "https://*.example.com"}, "CORS_ALLOWED_ORIGINS contains a wildcard"),
        ({"DEBUG": "0", "SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "x.example",
          "NEXOW_CREDENTIALS_KEY": ""}, "NEXOW_CREDENTIALS_KEY is not set"),
        ({"DEBUG": "0", "SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "x.example",
          "NEXOW_CREDENTIALS_KEY": "not-a-key"}, "NEXOW_CREDENTIALS_KEY is not a comma-separated"),
        ({"DEBUG": "1", "NEXOW_CREDENTIALS_KEY": FERNET_KEY + ",short"},
         "NEXOW_CREDENTIALS_KEY is not a comma-separated"),
    ],
)
def test_production_refuses_insecure_configuration_naming_the_variable(env, variable):
    result = load_settings(**env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"nexow: refusing to start: {lines[0].split(': ', 2)[2]}"]
    assert variable in lines[0]
    assert "loaded" not in result.stdout


def test_production_starts_with_secure_configuration():
    result = load_settings(DEBUG="0", SECRET_KEY=GOOD_KEY, ALLOWED_HOSTS="nexow.example",
                           CORS_ALLOWED_ORIGINS="https://app.nexow.example")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "loaded"


def test_embedded_defaults_need_no_environment(settings):
    assert settings.RUN_MODE in {"embedded", "services"}
    if settings.RUN_MODE == "embedded":
        assert settings.CELERY_BROKER_URL == "memory://"
        assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"
        assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    else:
        assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
        assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
        assert settings.CELERY_BROKER_URL.startswith("redis://")


def test_celery_reliability_settings(settings):
    # DESIGN.md: acks late + reject on worker lost, prefetch 1, time limits.
    from nexow_site.celery import app

    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit
