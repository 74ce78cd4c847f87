"""OpenAPI: every operation of a view built on the accounts API base documents the error envelope
for the statuses the base can produce (400, 401, 403, 404, 405, 406, 415, 429), so clients and
schema-driven tests see them as part of the contract."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    # Field name -> messages; nested inputs (lists, objects) nest the same shape.
    fields = serializers.DictField(child=serializers.JSONField())


class ErrorEnvelopeSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


ERROR_DESCRIPTIONS: dict[str, str] = {
    "400": "Invalid request (including an API key sent in the URL).",
    "401": "Not authenticated, or the API key is invalid, expired or revoked.",
    "403": "Authenticated but lacking the scope this operation needs.",
    "404": "No such object in this organisation (another tenant's object is a 404 too).",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "409": "Conflicts with the current state.",
    "415": "Unsupported media type.",
    "429": "Rate limit exceeded; see Retry-After.",
}
DEFAULT_ERROR_CODES = ("400", "401", "403", "404", "405", "406", "415", "429")


class NexowAutoSchema(AutoSchema):
    error_codes: tuple[str, ...] = DEFAULT_ERROR_CODES

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        codes = set(self.error_codes) | set(getattr(self.view, "extra_error_codes", ()))
        for code in sorted(codes):
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorEnvelopeSerializer,
                                    description=ERROR_DESCRIPTIONS.get(code, "Error.")),
                    code, direction=direction,
                )
        return responses


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "nx_live_…",
            "description": "An organisation API key in `Authorization: Bearer <key>`; never in "
                           "the URL.",
        }


class CsrfSessionScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api.authentication.CsrfSessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid",
                "description": "Browser session; unsafe methods need the X-CSRFToken header."}
