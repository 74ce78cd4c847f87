"""Input and output serializers of the accounts API. Inputs accept only what a caller may set
(never the organisation, the creator or a status); outputs never include a key's hash, and a key's
plaintext only in the one response that creates it."""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organization
from accounts.permissions import ALL_SCOPES, Role
from accounts.services import KEY_DEFAULT_DAYS, KEY_MAX_DAYS


class OrganizationOutSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="The caller's role in the organisation.")

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "created_at", "role"]

    def get_role(self, obj: Organization) -> str | None:
        roles = self.context.get("roles") or {}
        return roles.get(obj.pk)


class OrganizationCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=60, required=False)


class OrganizationUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)


class UserBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()


class MemberOutSerializer(serializers.ModelSerializer):
    user = UserBriefSerializer()

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]


class MemberUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationOutSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True)
    invited_by = serializers.EmailField(source="invited_by.email", default=None, read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "invited_by", "created_at", "expires_at",
                  "accepted_at", "revoked_at"]


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationAcceptedSerializer(serializers.Serializer):
    organization = serializers.SlugField(source="organization.slug")
    role = serializers.CharField()
    membership_id = serializers.IntegerField(source="id")


class ApiKeyOutSerializer(serializers.ModelSerializer):
    created_by = serializers.EmailField(source="created_by.email", read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    scopes = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "created_by", "created_at", "expires_at",
                  "last_used_at", "revoked_at", "is_active"]


class ApiKeyCreatedSerializer(ApiKeyOutSerializer):
    key = serializers.CharField(help_text="The secret. Shown only in this response; store it now.")

    class Meta(ApiKeyOutSerializer.Meta):
        fields = [*ApiKeyOutSerializer.Meta.fields, "key"]


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ALL_SCOPES), required=False, allow_empty=False,
        help_text="resource:level scopes; they can only narrow your role. Default: your role's.",
    )
    expires_in_days = serializers.IntegerField(min_value=1, max_value=KEY_MAX_DAYS,
                                               default=KEY_DEFAULT_DAYS)


class AuditEventOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "sequence", "created_at", "actor", "actor_label", "action", "target_type",
                  "target_id", "target_label", "ip_address", "user_agent", "request_id",
                  "metadata", "prev_hash", "entry_hash"]


class AuditFilterSerializer(serializers.Serializer):
    action = serializers.CharField(required=False, max_length=80,
                                   help_text="Action or action prefix, e.g. `member`.")
    actor = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1,
                                     help_text="Actor user id.")
    target_type = serializers.CharField(required=False, max_length=80)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class BrokenLinkSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    expected = serializers.CharField(allow_null=True)
    found = serializers.CharField(allow_null=True)
    reason = serializers.CharField()


class ChainReportSerializer(serializers.Serializer):
    chain = serializers.CharField()
    intact = serializers.BooleanField()
    checked = serializers.IntegerField()
    broken_link = BrokenLinkSerializer(allow_null=True)
