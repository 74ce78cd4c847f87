"""Admin console registrations for accounts: searchable, filterable lists for the operator's staff.

API keys show only their visible prefix, never the hash. The audit log is read-only for everyone,
superusers included: no add, change or delete permission exists for it here. (Requiring MFA for the
console itself is configured on ``admin.site`` elsewhere.)
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts import services
from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organization, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_active", "is_staff", "date_joined"]
    list_filter = ["is_active", "is_staff", "is_superuser"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Platform staff", {"fields": ("is_active", "is_staff", "is_superuser", "groups",
                                       "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",),
                             "fields": ("email", "password1", "password2")}),)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at", "deleted_at"]
    list_filter = [("deleted_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["created_at", "deleted_at"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "organization__name", "organization__slug"]
    autocomplete_fields = ["user", "organization"]
    list_select_related = ["user", "organization"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "created_at", "expires_at", "accepted_at",
                    "revoked_at"]
    list_filter = ["role", ("accepted_at", admin.EmptyFieldListFilter),
                   ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "organization__name", "organization__slug"]
    exclude = ["token_hash"]
    readonly_fields = ["organization", "email", "role", "invited_by", "created_at",
                       "accepted_at", "accepted_by"]

    def has_add_permission(self, request) -> bool:
        return False  # invitations carry a token e-mailed once; create them through the product


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "organization", "created_by", "created_at", "expires_at",
                    "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "expires_at"]
    search_fields = ["name", "prefix", "organization__slug", "created_by__email"]
    list_select_related = ["organization", "created_by"]
    # The hash is never shown; nothing is edited in place. Revoking goes through the service
    # (audited) via the list action.
    fields = ["name", "prefix", "organization", "created_by", "scopes", "created_at",
              "expires_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke_selected"]

    def has_add_permission(self, request) -> bool:
        return False  # a key's secret is shown once to its creator; staff never see one

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_selected(self, request, queryset) -> None:
        count = 0
        for key in queryset.filter(revoked_at__isnull=True).select_related("organization"):
            services.api_key_revoke_by_staff(key=key, actor=request.user, request=request)
            count += 1
        self.message_user(request, f"Revoked {count} key(s).")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "organization", "actor_label", "action", "target_type",
                    "target_label", "ip_address"]
    list_filter = ["action", "created_at"]
    search_fields = ["actor_label", "action", "target_label", "target_id", "request_id",
                     "organization__slug"]
    list_select_related = ["organization"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
