"""Pages of accounts: allauth's sign-in pages under /accounts/ and the portal's organisation pages.

allauth's URL names stay global (``account_login``, ``mfa_index``, …) as its templates expect;
the portal's are in the ``accounts`` namespace.
"""

from django.urls import include, path

from accounts import views

portal_patterns = [
    path("", views.home, name="home"),
    path("orgs/new/", views.organization_create, name="org-create"),
    path("orgs/switch/", views.organization_switch, name="org-switch"),
    path("orgs/<slug:slug>/", views.organization_home, name="org-home"),
    path("orgs/<slug:slug>/settings/", views.organization_settings, name="org-settings"),
    path("orgs/<slug:slug>/leave/", views.organization_leave, name="org-leave"),
    path("orgs/<slug:slug>/delete/", views.organization_delete, name="org-delete"),
    path("orgs/<slug:slug>/members/", views.members, name="members"),
    path("orgs/<slug:slug>/members/invite/", views.invitation_create, name="invite"),
    path("orgs/<slug:slug>/members/<int:membership_id>/role/", views.member_change_role,
         name="member-role"),
    path("orgs/<slug:slug>/members/<int:membership_id>/remove/", views.member_remove,
         name="member-remove"),
    path("orgs/<slug:slug>/invitations/<int:invitation_id>/revoke/", views.invitation_revoke,
         name="invitation-revoke"),
    path("orgs/<slug:slug>/api-keys/", views.api_keys, name="api-keys"),
    path("orgs/<slug:slug>/api-keys/<int:key_id>/revoke/", views.api_key_revoke,
         name="api-key-revoke"),
    path("orgs/<slug:slug>/audit/", views.audit_log, name="audit"),
    path("orgs/<slug:slug>/audit.csv", views.audit_log_csv, name="audit-csv"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation-accept"),
]

urlpatterns = [
    # Ahead of allauth's own login: the same view, answering 429 once attempts are throttled.
    path("accounts/login/", views.login, name="account_login"),
    path("accounts/", include("allauth.urls")),
    path("", include((portal_patterns, "accounts"))),
]
