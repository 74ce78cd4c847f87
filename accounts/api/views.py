"""Accounts API views: organisations, members, invitations, API keys and the audit log. Thin:
parse, call a service or selector, render. Organisation resolution, scopes and tenant filtering
come from `accounts.api.base`."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, mixins, status
from rest_framework.response import Response

from accounts import selectors, services
from accounts.api import serializers as s
from accounts.api.base import (
    NexowApiMixin,
    TenantAPIView,
    TenantGenericAPIView,
    TenantGenericViewSet,
)
from accounts.audit import audit_record, verify_chain
from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organization

_NO_CONTENT = OpenApiResponse(description="Done; no content.")


def _org_roles(user, orgs) -> dict[int, str]:
    return dict(
        Membership.objects.filter(user=user, organization__in=[o.pk for o in orgs])
        .values_list("organization_id", "role")
    )


# --- organisations --------------------------------------------------------------------------

class OrganizationListCreateView(NexowApiMixin, generics.GenericAPIView):
    """The organisations the caller belongs to (for a key: its own), and creating a new one."""

    serializer_class = s.OrganizationOutSerializer
    extra_error_codes = ("409",)
    queryset = Organization.active.none()  # for the schema; reads go through the selector

    @extend_schema(summary="List my organisations", responses=s.OrganizationOutSerializer(many=True))
    def get(self, request):
        orgs = selectors.organization_list_for_user(user=request.user, api_key=request.auth)
        page = self.paginate_queryset(orgs)
        ctx = {"roles": _org_roles(request.user, page)}
        return self.get_paginated_response(s.OrganizationOutSerializer(page, many=True,
                                                                      context=ctx).data)

    @extend_schema(summary="Create an organisation (you become its owner)",
                   request=s.OrganizationCreateSerializer,
                   responses={201: s.OrganizationOutSerializer})
    def post(self, request):
        self.require_session()
        data = _valid(s.OrganizationCreateSerializer, request.data)
        org = services.organization_create(name=data["name"], slug=data.get("slug"),
                                           actor=request.user, request=request)
        out = s.OrganizationOutSerializer(org, context={"roles": {org.pk: "owner"}})
        return Response(out.data, status=status.HTTP_201_CREATED)


def _valid(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class OrganizationDetailView(TenantAPIView):
    """The organisation in the URL."""

    required_scopes = {"GET": "org:read", "PATCH": "org:write", "DELETE": "org:admin"}

    def _out(self, org: Organization) -> dict:
        return s.OrganizationOutSerializer(org, context={"roles": {org.pk: self.caller.role}}).data

    @extend_schema(summary="Organisation details", responses=s.OrganizationOutSerializer)
    def get(self, request, org_slug: str):
        return Response(self._out(self.organization))

    @extend_schema(summary="Rename the organisation", request=s.OrganizationUpdateSerializer,
                   responses=s.OrganizationOutSerializer)
    def patch(self, request, org_slug: str):
        data = _valid(s.OrganizationUpdateSerializer, request.data)
        org = services.organization_update(organization=self.organization, name=data["name"],
                                           actor=request.user, request=request)
        return Response(self._out(org))

    @extend_schema(summary="Delete the organisation (owners only; records are retained)",
                   responses={204: _NO_CONTENT})
    def delete(self, request, org_slug: str):
        services.organization_delete(organization=self.organization, actor=request.user,
                                     request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- members --------------------------------------------------------------------------------

class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantGenericViewSet):
    queryset = Membership.objects.select_related("user").order_by("created_at", "id")
    serializer_class = s.MemberOutSerializer
    extra_error_codes = ("409",)
    required_scopes = {
        "list": "members:read", "retrieve": "members:read",
        "partial_update": "members:write", "destroy": "members:write", "leave": "org:read",
    }

    @extend_schema(summary="Change a member's role", request=s.MemberUpdateSerializer,
                   responses={200: s.MemberOutSerializer})
    def partial_update(self, request, org_slug: str, pk: int):
        membership = self.get_object()
        data = _valid(s.MemberUpdateSerializer, request.data)
        membership = services.membership_change_role(membership=membership, role=data["role"],
                                                     caller=self.caller, request=request)
        return Response(s.MemberOutSerializer(membership).data)

    @extend_schema(summary="Remove a member", responses={204: _NO_CONTENT})
    def destroy(self, request, org_slug: str, pk: int):
        services.membership_remove(membership=self.get_object(), caller=self.caller,
                                   request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Leave the organisation", request=None, responses={204: _NO_CONTENT})
    def leave(self, request, org_slug: str):
        self.require_session()
        services.membership_leave(caller=self.caller, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- invitations ----------------------------------------------------------------------------

class InvitationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantGenericViewSet):
    queryset = Invitation.objects.select_related("invited_by", "organization")
    serializer_class = s.InvitationOutSerializer
    extra_error_codes = ("409",)
    required_scopes = {
        "list": "members:read", "retrieve": "members:read",
        "create": "members:write", "destroy": "members:write",
    }

    @extend_schema(summary="Invite someone by e-mail", request=s.InvitationCreateSerializer,
                   responses={201: s.InvitationOutSerializer})
    def create(self, request, org_slug: str):
        data = _valid(s.InvitationCreateSerializer, request.data)
        invitation, _token = services.invitation_create(
            organization=self.organization, email=data["email"], role=data["role"],
            caller=self.caller, request=request,
        )
        return Response(s.InvitationOutSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke a pending invitation", responses={204: _NO_CONTENT})
    def destroy(self, request, org_slug: str, pk: int):
        services.invitation_revoke(invitation=self.get_object(), caller=self.caller,
                                   request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationAcceptView(NexowApiMixin, generics.GenericAPIView):
    """Accept an invitation sent to the signed-in user's e-mail address."""

    serializer_class = s.InvitationAcceptedSerializer
    queryset = Invitation.objects.none()
    extra_error_codes = ("409",)

    @extend_schema(summary="Accept an invitation", request=None,
                   responses={201: s.InvitationAcceptedSerializer})
    def post(self, request, token: str):
        self.require_session()
        membership = services.invitation_accept(token=token, user=request.user, request=request)
        return Response(s.InvitationAcceptedSerializer(membership).data,
                        status=status.HTTP_201_CREATED)


# --- API keys -------------------------------------------------------------------------------

class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantGenericViewSet):
    """Keys of the organisation: everyone sees and revokes their own; ``keys:admin`` all."""

    serializer_class = s.ApiKeyOutSerializer
    extra_error_codes = ("409",)
    required_scopes = {
        "list": "keys:read", "retrieve": "keys:read", "create": "keys:write",
        "destroy": "keys:write",
    }

    def get_base_queryset(self):
        qs = ApiKey.objects.select_related("created_by")
        caller = getattr(self, "caller", None)
        if caller is not None and not caller.has_scope("keys:admin"):
            qs = qs.filter(created_by=caller.user)
        return qs

    @extend_schema(summary="Create an API key (shown once; needs recent sign-in)",
                   request=s.ApiKeyCreateSerializer, responses={201: s.ApiKeyCreatedSerializer})
    def create(self, request, org_slug: str):
        self.require_recent_authentication()
        data = _valid(s.ApiKeyCreateSerializer, request.data)
        key, plaintext = services.api_key_create(
            caller=self.caller, name=data["name"], scopes=data.get("scopes"),
            expires_in_days=data["expires_in_days"], request=request,
        )
        out = dict(s.ApiKeyOutSerializer(key).data, key=plaintext)
        return Response(out, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke an API key (effective immediately)",
                   responses={204: _NO_CONTENT})
    def destroy(self, request, org_slug: str, pk: int):
        services.api_key_revoke(key=self.get_object(), caller=self.caller, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- audit log ------------------------------------------------------------------------------

def _audit_filters(request) -> dict:
    data = _valid(s.AuditFilterSerializer, request.query_params)
    return {
        "action": data.get("action"), "actor_id": data.get("actor"),
        "target_type": data.get("target_type"), "since": data.get("since"),
        "until": data.get("until"),
    }


class AuditEventListView(mixins.ListModelMixin, TenantGenericAPIView):
    """The organisation's audit log, newest first."""

    queryset = AuditEvent.objects.all()
    serializer_class = s.AuditEventOutSerializer
    required_scopes = {"GET": "audit:read"}

    def filter_queryset(self, queryset):
        return selectors.audit_event_filter(queryset, **_audit_filters(self.request))

    @extend_schema(summary="List audit entries", parameters=[s.AuditFilterSerializer])
    def get(self, request, org_slug: str):
        return self.list(request)


_CSV_COLUMNS = ["id", "sequence", "created_at", "actor_id", "actor_label", "action",
                "target_type", "target_id", "target_label", "ip_address", "user_agent",
                "request_id", "metadata", "prev_hash", "entry_hash"]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(events) -> Iterator[str]:
    import json

    writer = csv.writer(_Echo())
    yield writer.writerow(_CSV_COLUMNS)
    for e in events.iterator(chunk_size=2000):
        yield writer.writerow([
            e.pk, e.sequence, e.created_at.isoformat(), e.actor_id or "", e.actor_label, e.action,
            e.target_type, e.target_id, e.target_label, e.ip_address or "", e.user_agent,
            e.request_id, json.dumps(e.metadata, sort_keys=True), e.prev_hash, e.entry_hash,
        ])


class AuditExportView(TenantAPIView):
    """The filtered audit log as CSV (streamed)."""

    required_scopes = {"GET": "audit:read"}

    def perform_content_negotiation(self, request, force=False):
        # A CSV download: errors still render as JSON whatever the Accept header says.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(summary="Export audit entries as CSV", parameters=[s.AuditFilterSerializer],
                   responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, org_slug: str):
        f = _audit_filters(request)
        events = selectors.audit_event_list(organization=self.organization, **f)
        exported = audit_record(organization=self.organization, actor=request.user,
                                action="audit.exported", request=request,
                                metadata={k: str(v) for k, v in f.items() if v is not None})
        # The rows are streamed later: leave out this export's own entry and anything newer.
        events = events.filter(pk__lt=exported.pk)
        response = StreamingHttpResponse(_csv_rows(events), content_type="text/csv")
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = (
            f'attachment; filename="audit-{self.organization.slug}-{stamp}.csv"'
        )
        return response


class AuditVerifyView(TenantAPIView):
    """Recompute the organisation's hash chain and report the first broken link, if any."""

    required_scopes = {"GET": "audit:read"}

    @extend_schema(summary="Verify the audit chain", responses=s.ChainReportSerializer)
    def get(self, request, org_slug: str):
        return Response(verify_chain(self.organization).as_dict())
