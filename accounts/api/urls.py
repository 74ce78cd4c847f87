"""Accounts API routes, mounted under /api/v1/. Everything an organisation owns lives under
``orgs/<org_slug>/`` and is served by views built on `accounts.api.base`."""

from django.urls import path

from accounts.api import views

_member_list = views.MemberViewSet.as_view({"get": "list"})
_member_detail = views.MemberViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
)
_member_leave = views.MemberViewSet.as_view({"post": "leave"})
_invitation_list = views.InvitationViewSet.as_view({"get": "list", "post": "create"})
_invitation_detail = views.InvitationViewSet.as_view({"get": "retrieve", "delete": "destroy"})
_key_list = views.ApiKeyViewSet.as_view({"get": "list", "post": "create"})
_key_detail = views.ApiKeyViewSet.as_view({"get": "retrieve", "delete": "destroy"})

ORG = "orgs/<slug:org_slug>/"

urlpatterns = [
    path("orgs/", views.OrganizationListCreateView.as_view(), name="organization-list"),
    path(ORG, views.OrganizationDetailView.as_view(), name="organization-detail"),
    path(ORG + "members/", _member_list, name="member-list"),
    path(ORG + "members/leave/", _member_leave, name="member-leave"),
    path(ORG + "members/<int:pk>/", _member_detail, name="member-detail"),
    path(ORG + "invitations/", _invitation_list, name="invitation-list"),
    path(ORG + "invitations/<int:pk>/", _invitation_detail, name="invitation-detail"),
    path("invitations/<str:token>/accept/", views.InvitationAcceptView.as_view(),
         name="invitation-accept"),
    path(ORG + "api-keys/", _key_list, name="apikey-list"),
    path(ORG + "api-keys/<int:pk>/", _key_detail, name="apikey-detail"),
    path(ORG + "audit-log/", views.AuditEventListView.as_view(), name="audit-list"),
    path(ORG + "audit-log/export.csv", views.AuditExportView.as_view(), name="audit-export"),
    path(ORG + "audit-log/verify/", views.AuditVerifyView.as_view(), name="audit-verify"),
]
