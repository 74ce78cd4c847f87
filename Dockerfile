# syntax=docker/dockerfile:1
#
# The Nexow image. One image runs every process of the services mode; only the command differs:
#   web     (default CMD)  uvicorn nexow_site.asgi:application on 0.0.0.0:8000
#   worker                 celery -A nexow_site worker --loglevel INFO -Q default,sims,live,reports
#   beat                   celery -A nexow_site beat --loglevel INFO --pidfile=
#   migrate                nexow manage migrate --noinput
# See docs/deployment.md for docker compose and Kubernetes.

# ---- build: a virtual environment holding the project and its runtime dependencies ------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, read from pyproject.toml alone, so that editing the code does not reinstall
# numpy, pandas, numba and the rest on every build.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# The project itself, installed (not editable, no dev extras) from pyproject.toml.
COPY README.md LICENSE ./
COPY nexow_site ./nexow_site
COPY accounts ./accounts
COPY trading ./trading
COPY risk ./risk
COPY reporting ./reporting
RUN pip install .

# ---- runtime --------------------------------------------------------------------------------------
FROM python:3.11-slim AS runtime

# DEBUG=0 is the image default: a container started without SECRET_KEY and ALLOWED_HOSTS refuses
# to start instead of running with development defaults.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=nexow_site.settings \
    DEBUG=0 \
    NEXOW_VAR_DIR=/var/lib/nexow \
    STATIC_ROOT=/opt/nexow/static \
    MEDIA_ROOT=/var/lib/nexow/media \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    HOME=/var/lib/nexow

RUN groupadd --system --gid 10001 nexow \
    && useradd --system --uid 10001 --gid nexow --home-dir /var/lib/nexow --no-create-home \
        --shell /usr/sbin/nologin nexow \
    && mkdir -p /var/lib/nexow/media \
    && chown -R nexow:nexow /var/lib/nexow

COPY --from=build /opt/venv /opt/venv

# Static files are collected into the image (root-owned, read-only for the app user). Settings
# need a SECRET_KEY to load: DEBUG=1 and a throw-away key are given to this one step only, with a
# temporary var directory that is removed again, so no key, database or var/ file ends up in the
# image and nothing of this step reaches the runtime environment.
RUN DEBUG=1 SECRET_KEY=collectstatic-build-step-only NEXOW_VAR_DIR=/tmp/nexow-build \
        nexow manage collectstatic --noinput --verbosity 0 \
    && rm -rf /tmp/nexow-build

USER 10001:10001
WORKDIR /var/lib/nexow
EXPOSE 8000

# Liveness of the web process. The Host header must be one of ALLOWED_HOSTS: the deployment files
# include "localhost" for the probes. Worker and beat containers override or disable this check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:8000/healthz', headers={'Host': 'localhost'}), timeout=4)"]

# uvicorn is PID 1 (exec form) and receives SIGTERM itself: it stops accepting connections and lets
# requests in flight finish for up to 25 s, inside the 30 s grace period of compose and Kubernetes.
CMD ["uvicorn", "nexow_site.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--lifespan", "off", "--timeout-graceful-shutdown", "25", "--no-access-log", \
     "--ws", "auto"]
