"""The one tenant-scoped base for API views: every organisation-owned endpoint builds on it.

`TenantScopedMixin` (and the ready-made `TenantAPIView`, `TenantGenericAPIView`,
`TenantGenericViewSet`, `TenantModelViewSet`) does, once per request and in this order:

1. authenticate (API key first, then session with CSRF) and throttle the caller;
2. resolve the organisation from the ``org_slug`` URL kwarg and the caller's standing in it: a
   non-member, or a key of another organisation, gets **404** — indistinguishable from a missing
   organisation;
3. check the scope the view declares for the method (``required_scopes = {"GET": "orders:read",
   "POST": "orders:write"}``; viewset action names work too) — **403** with the error envelope,
   and an audit entry, when the caller lacks it;
4. scope ``get_queryset()`` by organisation. Subclasses define ``queryset`` or
   ``get_base_queryset()`` and, when the organisation is reached through a relation,
   ``tenant_field`` (e.g. ``"strategy__organization"``); overriding ``get_queryset`` is refused at
   class creation, so no view can forget the filter.

Request bodies naming other objects use `TenantPrimaryKeyRelatedField`, which only accepts
objects of the caller's organisation.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from rest_framework import exceptions, generics, mixins, serializers, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from accounts.api.schema import NexowAutoSchema
from accounts.api.throttling import apply_rate_limit_headers
from accounts.audit import audit_record
from accounts.models import Organization
from accounts.selectors import Caller, caller_for, organization_get_active
from nexow_site.errors import Forbidden

_METHOD_ALIASES = {"HEAD": "GET"}


def recently_authenticated(request, max_age: int | None = None) -> bool:
    """Whether the session user signed in or re-authenticated within
    ``ACCOUNT_REAUTHENTICATION_TIMEOUT`` seconds (allauth's authentication records)."""
    from allauth.account import app_settings as allauth_account_settings
    from allauth.account.internal.flows.login import get_authentication_records

    limit = allauth_account_settings.REAUTHENTICATION_TIMEOUT if max_age is None else max_age
    django_request = getattr(request, "_request", request)
    records = get_authentication_records(django_request, request.user)
    if not records:
        return False
    return time.time() - float(records[-1].get("at", 0)) < limit


class NexowApiMixin:
    """What every Nexow API view shares: the documented error responses, throttling before the
    permission checks (so refused callers are rate-limited too), rate-limit headers on every
    response, and one audit entry for every refused authorisation (403)."""

    schema = NexowAutoSchema()
    permission_classes: ClassVar[list] = [IsAuthenticated]

    def initial(self, request, *args, **kwargs) -> None:
        self.format_kwarg = self.get_format_suffix(**kwargs)
        neg = self.perform_content_negotiation(request)
        request.accepted_renderer, request.accepted_media_type = neg
        version, scheme = self.determine_version(request, *args, **kwargs)
        request.version, request.versioning_scheme = version, scheme
        try:
            self.perform_authentication(request)
        except exceptions.APIException:
            self.check_throttles(request)  # throttled as anonymous (per IP)
            raise
        self.check_throttles(request)
        self.check_permissions(request)
        self.check_tenant(request, **kwargs)

    def check_tenant(self, request, **kwargs) -> None:
        """Hook for the tenant mixin; plain API views have no organisation."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        return apply_rate_limit_headers(request, response)

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if response is not None and response.status_code == 403:
            self._audit_denied(exc)
        return response

    def _audit_denied(self, exc) -> None:
        request = self.request
        user = getattr(request, "_user", None)
        audit_record(
            organization=getattr(self, "organization", None),
            actor=user if user is not None and user.is_authenticated else None,
            action="authorization.denied",
            request=request,
            metadata={
                "method": request.method,
                "path": request.path,
                "scope": getattr(self, "denied_scope", None),
                "reason": str(getattr(exc, "detail", getattr(exc, "message", exc)))[:300],
            },
        )

    # --- helpers for views -------------------------------------------------------------------
    def require_session(self) -> None:
        """Refuse API keys for actions that only a signed-in person may take."""
        if self.request.auth is not None:
            raise Forbidden("This operation needs a signed-in session; API keys cannot do it.",
                            code="session_required")

    def require_recent_authentication(self) -> None:
        """Sensitive actions need a sign-in or re-authentication within the last few minutes."""
        self.require_session()
        if not recently_authenticated(self.request):
            raise Forbidden(
                "Please confirm your identity again (re-authenticate at "
                "/accounts/reauthenticate/) and retry.",
                code="reauthentication_required",
            )


class TenantScopedMixin(NexowApiMixin):
    """Resolves the organisation and the caller, checks the declared scope, scopes querysets."""

    org_url_kwarg: ClassVar[str] = "org_slug"
    required_scopes: ClassVar[Mapping[str, str]] = {}
    tenant_field: ClassVar[str] = "organization"
    organization: Organization
    caller: Caller
    denied_scope: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__ and not cls.__dict__.get("unscoped_queryset_reason"):
            raise TypeError(
                f"{cls.__name__} overrides get_queryset(); define get_base_queryset() (or "
                "queryset) and tenant_field instead, so the organisation filter always applies."
            )

    def required_scope(self, request) -> str | None:
        if request.method == "OPTIONS":
            return "org:read"  # describes the endpoint only; any member may ask
        method = _METHOD_ALIASES.get(request.method, request.method)
        action = getattr(self, "action", None)
        if action and action in self.required_scopes:
            return self.required_scopes[action]
        return self.required_scopes.get(method)

    def check_tenant(self, request, **kwargs) -> None:
        org = organization_get_active(slug=kwargs.get(self.org_url_kwarg, ""))
        caller = caller_for(user=request.user, organization=org, api_key=request.auth) \
            if org is not None else None
        if caller is None:
            raise exceptions.NotFound("No such organisation.")
        self.organization, self.caller = org, caller
        scope = self.required_scope(request)
        if scope is None:
            handler_name = request.method.lower()
            if getattr(self, "action", None) or hasattr(self, handler_name):
                raise ImproperlyConfigured(
                    f"{type(self).__name__} declares no required scope for {request.method}."
                )
            raise exceptions.MethodNotAllowed(request.method)
        if not caller.has_scope(scope):
            self.denied_scope = scope
            raise exceptions.PermissionDenied(f"This needs the '{scope}' permission.")

    # --- querysets -----------------------------------------------------------------------------
    def get_base_queryset(self) -> QuerySet:
        if self.queryset is None:
            raise ImproperlyConfigured(
                f"{type(self).__name__} needs `queryset` or get_base_queryset()."
            )
        return self.queryset.all()

    def get_queryset(self) -> QuerySet:
        qs = self.get_base_queryset()
        if not hasattr(self, "organization"):
            # Only schema generation gets here (no request was resolved): show nothing.
            return qs.none()
        return qs.filter(**{self.tenant_field: self.organization})

    def get_object(self):
        # A path id beyond the database's integer range names nothing: 404, not an overflow.
        lookup = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
        if isinstance(lookup, int) and not -(2**63) <= lookup < 2**63:
            raise exceptions.NotFound()
        return super().get_object()

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["organization"] = getattr(self, "organization", None)
        context["caller"] = getattr(self, "caller", None)
        return context


class NexowAPIView(NexowApiMixin, APIView):
    """Base for API views outside any organisation (e.g. listing my organisations)."""


class TenantAPIView(TenantScopedMixin, APIView):
    """An organisation-scoped view without a queryset."""


class TenantGenericAPIView(TenantScopedMixin, generics.GenericAPIView):
    """An organisation-scoped generic view."""


class TenantGenericViewSet(TenantScopedMixin, viewsets.GenericViewSet):
    """An organisation-scoped viewset; add the DRF mixins you need."""


class TenantModelViewSet(
    TenantScopedMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin, mixins.DestroyModelMixin, mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Create/retrieve/update/destroy/list, organisation-scoped."""


class TenantPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A foreign key in a request body that must belong to the caller's organisation; another
    tenant's id reads as "does not exist", exactly like a missing one."""

    def __init__(self, *, tenant_field: str = "organization", **kwargs: Any) -> None:
        self.tenant_field = tenant_field
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        qs = super().get_queryset()
        org = self.context.get("organization") or getattr(self.context.get("view"),
                                                           "organization", None)
        if org is None:
            raise ImproperlyConfigured(
                "TenantPrimaryKeyRelatedField needs the organisation in the serializer context "
                "(use it from a tenant-scoped view)."
            )
        return qs.filter(**{self.tenant_field: org})
