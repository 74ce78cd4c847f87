"""Django settings for Nexow, driven entirely by environment variables.

Two run modes share this one module (see DESIGN.md, Run modes):

* **embedded** (nothing set): SQLite under ``var/``, Celery on an in-memory transport consumed by a
  worker thread inside the web process, the in-memory channel layer, e-mail written to files.
* **services** (``DATABASE_URL`` and ``REDIS_URL`` set): PostgreSQL, Redis as Celery broker,
  channel layer and cache, separate ``celery worker`` / ``celery beat`` processes, SMTP.

With ``DEBUG`` off (production) the process refuses to start when a secret or host setting is
missing or insecure, with one line naming the variable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import sys
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env") if (BASE_DIR / ".env").exists() else None

VAR_DIR = Path(env.str("NEXOW_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=True)


def _refuse(message: str) -> None:
    # One line, no traceback: operators read this in a container log.
    sys.stderr.write(f"nexow: refusing to start: {message}\n")
    raise SystemExit(2)


def _embedded_secret_key() -> str:
    """A random key kept under var/ so that sessions survive restarts of a development install."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def _insecure_secret(value: str) -> bool:
    return len(value) < 50 or len(set(value)) < 5 or value.startswith("django-insecure")


SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

if DEBUG:
    SECRET_KEY = SECRET_KEY or _embedded_secret_key()
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]", "testserver"]
else:
    if not SECRET_KEY:
        _refuse("SECRET_KEY is not set (DEBUG is off)")
    if _insecure_secret(SECRET_KEY):
        _refuse("SECRET_KEY is insecure: use at least 50 random characters")
    if not ALLOWED_HOSTS:
        _refuse("ALLOWED_HOSTS is empty (DEBUG is off)")
    if "*" in ALLOWED_HOSTS:
        _refuse("ALLOWED_HOSTS contains a wildcard '*' (DEBUG is off)")
    if any("*" in origin for origin in CORS_ALLOWED_ORIGINS) or env.bool(
        "CORS_ALLOW_ALL_ORIGINS", default=False
    ):
        _refuse("CORS_ALLOWED_ORIGINS contains a wildcard (DEBUG is off)")

# --- broker credentials ---------------------------------------------------------------------
# Fernet key(s) encrypting broker API secrets at rest (trading/crypto.py); several, separated by
# commas, rotate: the first encrypts, all decrypt. Without one, DEBUG derives a development key
# from SECRET_KEY; production refuses to start rather than hang credentials on another secret.
NEXOW_CREDENTIALS_KEY = env.str("NEXOW_CREDENTIALS_KEY", default="")


def _valid_fernet_keys(raw: str) -> bool:
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    try:
        return bool(keys) and all(len(base64.urlsafe_b64decode(k.encode())) == 32 for k in keys)
    except (binascii.Error, ValueError):
        return False


if NEXOW_CREDENTIALS_KEY and not _valid_fernet_keys(NEXOW_CREDENTIALS_KEY):
    _refuse("NEXOW_CREDENTIALS_KEY is not a comma-separated list of Fernet keys "
            "(urlsafe base64 of 32 bytes)")
if not DEBUG and not NEXOW_CREDENTIALS_KEY:
    _refuse("NEXOW_CREDENTIALS_KEY is not set (DEBUG is off)")
if not NEXOW_CREDENTIALS_KEY:  # DEBUG: a development key derived from SECRET_KEY
    NEXOW_CREDENTIALS_KEY = base64.urlsafe_b64encode(
        hashlib.sha256(b"nexow-credentials|" + SECRET_KEY.encode()).digest()).decode()

# --- run mode -------------------------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="")
REDIS_URL = env.str("REDIS_URL", default="")
SERVICES_MODE = bool(DATABASE_URL and REDIS_URL)
RUN_MODE = "services" if SERVICES_MODE else "embedded"

INSTALLED_APPS = [
    # The admin console (/console/) is Nexow's staff-and-MFA-only site, see nexow_site/admin_site.py.
    "nexow_site.admin_site.NexowAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "corsheaders",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "channels",
    # Before allauth: accounts/templates overrides allauth's templates (sign-in pages in our layout).
    "accounts",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "nexow_site",
    "trading",
    "risk",
    "reporting",
]

MIDDLEWARE = [
    "nexow_site.observability.RequestIdMiddleware",
    "nexow_site.errors.DependencyOutageMiddleware",
    "accounts.api.throttling.RateLimitHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.CurrentOrganizationMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "nexow_site.urls"
WSGI_APPLICATION = "nexow_site.wsgi.application"
ASGI_APPLICATION = "nexow_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "nexow_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.portal",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "nexow.sqlite3"),
            # WAL + a busy timeout let the worker thread and request threads write side by side.
            "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
_db = DATABASES["default"]
if _db["ENGINE"].endswith("postgresql"):
    # A database outage must turn into a quick 503, never a hung request.
    _db.setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
    if env.bool("NEXOW_DB_POOL", default=False):
        # The ASGI server runs each request's synchronous code in a thread of its own, so a
        # persistent connection is never reused there: every request would open one (≈ 4 ms).
        # The web process pools them instead (asgi.py turns this on for itself); each checkout
        # is checked, and waiting more than 3 s for one is an outage (503), not a hang.
        _db["OPTIONS"]["pool"] = {"min_size": 1,
                                  "max_size": env.int("DB_POOL_MAX_SIZE", default=10),
                                  "timeout": 3}
        _db["CONN_MAX_AGE"] = 0
        _db["CONN_HEALTH_CHECKS"] = True  # Django then checks each connection on checkout
    else:
        # Worker and beat processes keep one connection per thread for a while.
        _db["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
        _db["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache, Celery, Channels ------------------------------------------------------------------
_REDIS_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 2, "retry_on_timeout": False}
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": _REDIS_OPTIONS,
            "KEY_PREFIX": "nexow",
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # The layer blocks in BZPOPMIN for 5 s per receive; redis-py >= 8 defaults the
            # socket timeout to 5 s as well, which kills every WebSocket idle for 5 s.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                       "prefix": "nexow:asgi", "capacity": 1000},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None  # authoritative state lives in the database, never in a backend
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes the database connections around every task unless this is set;
# it then closes them only every this many tasks, and nexow_site.celery recycles them between
# tasks the way Django does between requests (CONN_MAX_AGE, health checks, errors).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=3600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=3300)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redis redelivers an unacknowledged (acks_late) task after this many seconds.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3900),
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Queues: "sims" for simulations and analyses, "live" for deployments, "reports" for report
# generation and e-mail, "default" for the rest. Workers without -Q consume all of them (the
# embedded worker thread does), so every queue is declared here.
CELERY_TASK_QUEUES = {name: {"exchange": name, "routing_key": name}
                      for name in ("default", "sims", "live", "reports")}
CELERY_TASK_ROUTES = {
    "trading.run_simulation": {"queue": "sims"},
    "trading.analysis_child": {"queue": "sims"},
    "trading.analysis_aggregate": {"queue": "sims"},
    "trading.sweep_simulations": {"queue": "default"},
    "trading.advance_deployment": {"queue": "live"},
    "trading.tick_deployments": {"queue": "live"},
    "reporting.*": {"queue": "reports"},
    "risk.*": {"queue": "default"},
}
# django-celery-beat's DatabaseScheduler copies this into its PeriodicTask table when beat starts.
CELERY_BEAT_SCHEDULE = {
    "trading.sweep_simulations": {"task": "trading.sweep_simulations", "schedule": 60.0,
                                  "options": {"queue": "default", "expires": 55}},
    "risk.sweep_alerts": {"task": "risk.sweep_alerts", "schedule": 300.0,
                          "options": {"queue": "default", "expires": 290}},
    "trading.tick_deployments": {"task": "trading.tick_deployments", "schedule": 2.0,
                                 "options": {"queue": "live", "expires": 2}},
}
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# In embedded mode the web process runs a worker thread; NEXOW_EMBEDDED_WORKER=0 turns it off.
EMBEDDED_WORKER = env.bool("NEXOW_EMBEDDED_WORKER", default=not SERVICES_MODE)

# --- auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
# Accounts: e-mail as the login, verified before use (django-allauth).
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_REAUTHENTICATION_TIMEOUT = 300
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
# The operator may close self-service sign-up (invitations still work for existing accounts).
NEXOW_SIGNUP_OPEN = env.bool("NEXOW_SIGNUP_OPEN", default=True)
# Exchange REST base URLs a ccxt broker account may name in its `base_url` option (a regional
# endpoint, a local fake). Empty: only the exchange's own hosts. A tenant-chosen URL would make
# the worker send signed requests anywhere, so only the operator lists them.
NEXOW_CCXT_BASE_URLS = env.list("NEXOW_CCXT_BASE_URLS", default=[])
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "confirm_email": "1/3m/key",
}
LOGIN_REDIRECT_URL = "/"
LOGIN_URL = "/accounts/login/"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Nexow"
SOCIALACCOUNT_ONLY = False
# A generic OpenID Connect provider for SSO, configured entirely from the environment.
OIDC_PROVIDER_ID = env.str("OIDC_PROVIDER_ID", default="")
SOCIALACCOUNT_PROVIDERS = {}
if OIDC_PROVIDER_ID:
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "APPS": [{
            "provider_id": OIDC_PROVIDER_ID,
            "name": env.str("OIDC_NAME", default="Single sign-on"),
            "client_id": env.str("OIDC_CLIENT_ID"),
            "secret": env.str("OIDC_CLIENT_SECRET"),
            "settings": {"server_url": env.str("OIDC_SERVER_URL")},
        }]
    }

# --- i18n, static -----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(VAR_DIR / "static"))
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "/media/"
# Serve straight from app static folders when collectstatic has not been run (embedded mode).
WHITENOISE_USE_FINDERS = True
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # plotly.js from the installed plotly package, served as vendor/plotly.min.js.
    "nexow_site.portal_assets.PackageAssetFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- e-mail ---------------------------------------------------------------------------------
EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Nexow <no-reply@nexow.localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # API keys first: their 401 challenge ("Bearer") is what anonymous callers get.
        "accounts.api.authentication.ApiKeyAuthentication",
        "accounts.api.authentication.CsrfSessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.api.throttling.ApiRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": env.str("API_RATE_KEY", default="1200/min"),
        "user": env.str("API_RATE_USER", default="600/min"),
        "anon": env.str("API_RATE_ANON", default="120/min"),
    },
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "nexow_site.pagination.CursorlessPageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "nexow_site.errors.api_exception_handler",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Nexow API",
    "DESCRIPTION": "Multi-tenant algorithmic trading: market data, strategies, simulations, "
    "live deployments, risk and reports. Errors use one envelope: "
    '`{"error": {"code", "message", "fields"}}`.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status", "kind" or "format" field: each choice set gets its own name.
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "trading.models.RunStatus",
        "DeploymentStatusEnum": "trading.models.DeploymentStatus",
        "AnalysisKindEnum": "trading.models.AnalysisKind",
        "BrokerKindEnum": "trading.models.BrokerKind",
        "ReportStatusEnum": "reporting.models.ReportStatus",
        "ReportDeliveryStatusEnum": "reporting.models.DeliveryStatus",
        "ReportKindEnum": "reporting.models.ReportKind",
        "ReportFormatEnum": "reporting.models.ReportFormat",
        "SubscriptionKindEnum": "reporting.models.SubscriptionKind",
        "AlertKindEnum": "risk.models.AlertKind",
        "AlertDeliveryStatusEnum": "risk.models.DeliveryStatus",
        "WebhookFormatEnum": "risk.core.alerts.FORMATS",
    },
}

# --- security headers -------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'", "ws:", "wss:"],
        "frame-ancestors": ["'none'"],
    }
}

# --- logging ----------------------------------------------------------------------------------
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if SERVICES_MODE else "text")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "nexow_site.observability.RequestIdFilter"},
        "redact": {"()": "nexow_site.observability.RedactSecretsFilter"},
    },
    "formatters": {
        "json": {"()": "nexow_site.observability.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "celery": {"level": "INFO"},
    },
}
