"""Reporting API views: generate/list/read/download/delete reports, subscriptions CRUD and the
deliveries list. Thin: parse, call a service or selector, render. Organisation resolution,
scopes and tenant filtering come from `accounts.api.base`; which kinds a role sees comes from
`reporting.selectors` (another organisation's report, or one the role may not see, is a 404)."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api.base import TenantGenericViewSet
from nexow_site.errors import Conflict
from reporting import selectors, services, sources
from reporting.api import serializers as s
from reporting.models import (
    SUBSCRIPTION_REPORT_KIND,
    Report,
    ReportDelivery,
    ReportStatus,
    ReportSubscription,
)

_NO_CONTENT = OpenApiResponse(description="Done; no content.")


def _valid(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantGenericViewSet):
    """The organisation's report archive. Everyone with ``reports:read`` lists and downloads the
    kinds their role may see; generating and deleting need ``reports:write``."""

    serializer_class = s.ReportOutSerializer
    extra_error_codes = ("409",)
    required_scopes = {"list": "reports:read", "retrieve": "reports:read",
                       "download": "reports:read", "create": "reports:write",
                       "destroy": "reports:write"}

    def perform_content_negotiation(self, request, force=False):
        # A download answers with the file whatever the client accepts (application/pdf, ...);
        # errors on that route still come as the JSON envelope.
        return super().perform_content_negotiation(
            request, force=force or getattr(self, "action", None) == "download")

    def get_base_queryset(self):
        if not hasattr(self, "caller"):
            return Report.objects.none()
        return selectors.report_list(organization=self.organization, caller=self.caller) \
            .select_related("organization")

    @extend_schema(summary="List reports")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="Show a report")
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(summary="Generate a report (queued; poll the report or its download)",
                   request=s.ReportRequestSerializer, responses={202: s.ReportOutSerializer},
                   examples=[
                       OpenApiExample("Monthly statement of a deployment", request_only=True,
                                      value={"kind": "statement", "format": "pdf",
                                             "parameters": {"deployment": 12,
                                                            "start": "2026-01-01",
                                                            "end": "2026-01-31"}}),
                       OpenApiExample("US tax report of a broker account", request_only=True,
                                      value={"kind": "tax", "format": "json",
                                             "parameters": {"broker_account": 3, "year": 2026,
                                                            "jurisdiction": "us",
                                                            "method": "fifo"}}),
                       OpenApiExample("RTS 22 XML of a deployment", request_only=True,
                                      value={"kind": "rts22", "format": "xml",
                                             "parameters": {"deployment": 12,
                                                            "executing_entity":
                                                                "5493001KJTIIGC8Y1R12"}}),
                   ])
    def create(self, request, org_slug: str):
        data = _valid(s.ReportRequestSerializer, request.data)
        sources.parameters_check(organization=self.organization, kind=data["kind"],
                                 parameters=data["parameters"], caller=self.caller)
        report = services.report_request(organization=self.organization, caller=self.caller,
                                         kind=data["kind"], fmt=data.get("format"),
                                         parameters=data["parameters"], request=request)
        return Response(s.ReportOutSerializer(report).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Delete a report and its file", responses={204: _NO_CONTENT})
    def destroy(self, request, org_slug: str, pk: int):
        services.report_delete(report=self.get_object(), actor=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Download a report's file",
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, org_slug: str, pk: int):
        report = self.get_object()
        if report.status != ReportStatus.SUCCEEDED or not report.file:
            raise Conflict(f"The report is {report.status}; there is no file to download yet.",
                           code="report_not_ready")
        response = FileResponse(report.file.open("rb"), as_attachment=True,
                                filename=report.filename, content_type=report.content_type)
        response["X-Content-SHA256"] = report.sha256
        return response


class SubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                          TenantGenericViewSet):
    """Scheduled report e-mails. Members subscribe themselves (``reports:read``) to the kinds
    their role may see; owners, admins and compliance see and manage everyone's."""

    serializer_class = s.SubscriptionOutSerializer
    required_scopes = {"list": "reports:read", "retrieve": "reports:read",
                       "create": "reports:read", "partial_update": "reports:read",
                       "destroy": "reports:read"}

    def get_base_queryset(self):
        if not hasattr(self, "caller"):
            return ReportSubscription.objects.none()
        return selectors.subscription_list(organization=self.organization, caller=self.caller)

    @extend_schema(summary="List report subscriptions")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="Show a subscription")
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(summary="Subscribe yourself to a scheduled report",
                   request=s.SubscriptionCreateSerializer,
                   responses={201: s.SubscriptionOutSerializer})
    def create(self, request, org_slug: str):
        data = _valid(s.SubscriptionCreateSerializer, request.data)
        sources.parameters_check(organization=self.organization,
                                 kind=SUBSCRIPTION_REPORT_KIND.get(data["kind"], ""),
                                 parameters=data["parameters"], caller=self.caller)
        sub = services.subscription_create(organization=self.organization, caller=self.caller,
                                           kind=data["kind"], parameters=data["parameters"],
                                           request=request)
        return Response(s.SubscriptionOutSerializer(sub).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Pause, resume or change a subscription",
                   request=s.SubscriptionUpdateSerializer,
                   responses=s.SubscriptionOutSerializer)
    def partial_update(self, request, org_slug: str, pk: int):
        sub = self.get_object()
        data = _valid(s.SubscriptionUpdateSerializer, request.data)
        if data.get("parameters") is not None:
            sources.parameters_check(organization=self.organization,
                                     kind=SUBSCRIPTION_REPORT_KIND.get(sub.kind, ""),
                                     parameters=data["parameters"], caller=self.caller)
        sub = services.subscription_update(subscription=sub, actor=request.user,
                                           active=data.get("active"),
                                           parameters=data.get("parameters"), request=request)
        return Response(s.SubscriptionOutSerializer(sub).data)

    @extend_schema(summary="Delete a subscription", responses={204: _NO_CONTENT})
    def destroy(self, request, org_slug: str, pk: int):
        services.subscription_delete(subscription=self.get_object(), actor=request.user,
                                     request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeliveryViewSet(mixins.ListModelMixin, TenantGenericViewSet):
    """Deliveries of scheduled e-mails with their status and last error."""

    serializer_class = s.DeliveryOutSerializer
    required_scopes = {"list": "reports:read"}

    def get_base_queryset(self):
        if not hasattr(self, "caller"):
            return ReportDelivery.objects.none()
        return selectors.delivery_list(organization=self.organization, caller=self.caller)

    @extend_schema(summary="List e-mail deliveries (status, attempts, last error)")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)
