"""One error envelope for the whole API: ``{"error": {"code", "message", "fields"}}``.

Services raise domain errors (`ApplicationError` and its subclasses); this module maps them, DRF's
own exceptions and dependency outages to the envelope with the right status. A database, cache or
broker outage becomes a 503 with ``Retry-After`` instead of a crash.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger("nexow.errors")


class ApplicationError(Exception):
    """A domain error a service raises; the API turns it into the envelope."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, fields: dict | None = None, code: str | None = None,
                 status_code: int | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.headers = headers or {}


class Conflict(ApplicationError):
    status_code, code = 409, "conflict"


class NotFound(ApplicationError):
    status_code, code = 404, "not_found"


class Forbidden(ApplicationError):
    status_code, code = 403, "permission_denied"


class TooLarge(ApplicationError):
    status_code, code = 413, "too_large"


class RateLimited(ApplicationError):
    status_code, code = 429, "throttled"


class ServiceUnavailable(ApplicationError):
    status_code, code = 503, "service_unavailable"


def _outage_exceptions() -> tuple[type[BaseException], ...]:
    excs: list[type[BaseException]] = [OperationalError, InterfaceError]
    try:
        import redis.exceptions

        excs += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:  # pragma: no cover - redis is a hard dependency
        pass
    try:
        import kombu.exceptions

        excs.append(kombu.exceptions.OperationalError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(excs)


OUTAGE_EXCEPTIONS = _outage_exceptions()
RETRY_AFTER_SECONDS = 5


def envelope(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten_fields(detail) -> dict:
    if isinstance(detail, dict):
        return {k: _flatten_fields(v) if isinstance(v, dict) else [str(x) for x in (v if isinstance(v, list) else [v])]
                for k, v in detail.items()}
    return {}


def outage_response(exc: BaseException) -> dict:
    return envelope("service_unavailable",
                    "A dependency is unavailable; please retry shortly.",
                    {"dependency": [type(exc).__module__.split(".")[0]]})


def api_exception_handler(exc, context):
    """DRF EXCEPTION_HANDLER: every API error in the one envelope."""
    if isinstance(exc, ApplicationError):
        resp = Response(envelope(exc.code, exc.message, exc.fields), status=exc.status_code)
        for k, v in exc.headers.items():
            resp[k] = v
        return resp
    if isinstance(exc, OUTAGE_EXCEPTIONS):
        logger.warning("dependency outage: %s", type(exc).__name__)
        resp = Response(outage_response(exc), status=status.HTTP_503_SERVICE_UNAVAILABLE)
        resp["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return resp
    if isinstance(exc, DataError):
        # The database refused a value (a NUL character in text, a number out of range): the
        # request's fault, reported as such rather than as a server error.
        return Response(envelope("invalid", "The request contains a value that cannot be stored "
                                 "(for example a NUL character or an out-of-range number)."),
                        status=400)
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(envelope("invalid", "The request is invalid.", fields), status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        if isinstance(exc, DatabaseError):
            logger.exception("database error")
        return None  # a real bug: Django's handler500 renders the envelope
    detail = response.data
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten_fields(detail) if isinstance(detail, dict) else {"non_field_errors": [str(d) for d in detail]}
        message = "The request is invalid."
        if isinstance(detail, dict) and list(detail) == ["non_field_errors"]:
            message = str(detail["non_field_errors"][0])
        response.data = envelope("invalid", message, fields)
    else:
        code = getattr(exc, "default_code", "error")
        if isinstance(exc, exceptions.APIException):
            codes = exc.get_codes()
            if isinstance(codes, str):
                code = codes
        message = str(detail.get("detail", detail)) if isinstance(detail, dict) else str(detail)
        response.data = envelope(code, message)
    return response


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def json_404(request, exception=None):
    return JsonResponse(envelope("not_found", "Not found."), status=404)


def json_500(request):
    return JsonResponse(envelope("server_error", "Internal server error."), status=500)


def handler404(request, exception=None):
    if _is_api(request):
        return json_404(request, exception)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if _is_api(request):
        return json_500(request)
    from django.views.defaults import server_error

    return server_error(request)


class DependencyOutageMiddleware:
    """Turns an outage escaping any view (portal pages included) into a 503 with Retry-After, and
    keeps every API error in the envelope even with DEBUG on (no HTML debug pages under /api/)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if _is_api(request) and response.status_code in (404, 405, 500) and not response.get(
                "Content-Type", "").startswith("application/json"):
            code = {404: "not_found", 405: "method_not_allowed", 500: "server_error"}[response.status_code]
            message = {404: "Not found.", 405: f"Method {request.method} not allowed.",
                       500: "Internal server error."}[response.status_code]
            return JsonResponse(envelope(code, message), status=response.status_code)
        return response

    def process_exception(self, request, exception):
        if not isinstance(exception, OUTAGE_EXCEPTIONS):
            if _is_api(request) and not isinstance(exception, Http404):
                logger.error("unhandled error on %s", request.path, exc_info=exception)
                return json_500(request)
            return None
        logger.warning("dependency outage on %s: %s", request.path, type(exception).__name__)
        if _is_api(request) or "application/json" in request.headers.get("Accept", ""):
            resp = JsonResponse(outage_response(exception), status=503)
        else:
            from django.http import HttpResponse

            resp = HttpResponse(
                "<h1>Service temporarily unavailable</h1><p>A dependency is down; "
                "please retry in a few seconds.</p>", status=503)
        resp["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return resp
