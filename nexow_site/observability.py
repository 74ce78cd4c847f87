"""Request ids and structured logs: every log line carries the id of the request or task it
belongs to, and nothing that looks like a secret reaches a log handler."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_VALID_INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

# Patterns of values that must never be logged: API keys, bearer tokens, passwords in query
# strings or bodies, database/broker URLs with credentials.
_SECRET_PATTERNS = [
    (re.compile(r"nx_(live|test)_[A-Za-z0-9_]+"), r"nx_\1_[REDACTED]"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[REDACTED]"),
    (re.compile(r"(?i)((?:password|passwd|secret|token|api_key|apikey)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+"), r"\1[REDACTED]"),
    (re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+(@)"), r"\1[REDACTED]\2"),
]


# Paths that carry a one-time token (invitation links, unsubscribe links).
_TOKEN_PATH = re.compile(r"(/(?:invitations|unsubscribe)/)[^/]+")


def redact_path(path: str) -> str:
    return _TOKEN_PATH.sub(r"\1[REDACTED]", path)


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def new_request_id() -> str:
    return uuid.uuid4().hex


access_logger = logging.getLogger("nexow.access")


class RequestIdMiddleware:
    """Takes a well-formed X-Request-ID from the caller or makes one, echoes it back, and writes
    one access-log line per request.

    The id is deliberately left set after the response: Django logs 404s and 500s after the
    middleware chain returns, and those lines must carry the id too. The next request replaces it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _VALID_INCOMING_ID.match(incoming) else new_request_id()
        request.request_id = rid
        request_id_var.set(rid)
        started = time.perf_counter()
        response = self.get_response(request)
        response["X-Request-ID"] = rid
        if request.path not in ("/healthz", "/readyz"):
            access_logger.info("%s %s %s %.1fms", request.method, redact_path(request.path),
                               response.status_code,
                               (time.perf_counter() - started) * 1000)
        return response


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, the shape log pipelines expect."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id_var.get()),
        }
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)
