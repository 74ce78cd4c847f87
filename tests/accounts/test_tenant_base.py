"""The tenant-scoped API base: querysets always filtered by organisation, foreign keys in bodies
checked against the caller's organisation, and no way to forget either."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework import serializers

from accounts.api.base import TenantGenericAPIView, TenantPrimaryKeyRelatedField
from accounts.models import Membership
from accounts.permissions import Role
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


class _MemberRefSerializer(serializers.Serializer):
    member = TenantPrimaryKeyRelatedField(queryset=Membership.objects.all())


def test_a_foreign_key_of_another_tenant_reads_as_missing():
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    mine = MembershipFactory(organization=org_a, role=Role.VIEWER)
    theirs = MembershipFactory(organization=org_b, role=Role.VIEWER)
    ok = _MemberRefSerializer(data={"member": mine.pk}, context={"organization": org_a})
    assert ok.is_valid() and ok.validated_data["member"] == mine
    bad = _MemberRefSerializer(data={"member": theirs.pk}, context={"organization": org_a})
    assert not bad.is_valid()
    missing = _MemberRefSerializer(data={"member": 10**9}, context={"organization": org_a})
    assert not missing.is_valid()
    # Same message for "another tenant's" and "does not exist": nothing leaks.
    assert str(bad.errors["member"][0]).replace(str(theirs.pk), "X") == \
        str(missing.errors["member"][0]).replace(str(10**9), "X")


def test_the_field_refuses_to_work_without_an_organisation():
    serializer = _MemberRefSerializer(data={"member": 1}, context={})
    with pytest.raises(ImproperlyConfigured):
        serializer.is_valid()


def test_overriding_get_queryset_is_refused_when_the_class_is_defined():
    with pytest.raises(TypeError, match="get_base_queryset"):
        class Leaky(TenantGenericAPIView):  # noqa: F841 - defining it is the test
            def get_queryset(self):
                return Membership.objects.all()


def test_the_loud_escape_hatch_allows_an_override_with_a_reason():
    class Unscoped(TenantGenericAPIView):
        unscoped_queryset_reason = "lists platform-wide reference data"

        def get_queryset(self):
            return Membership.objects.all()

    assert Unscoped.unscoped_queryset_reason


def test_querysets_are_filtered_by_the_resolved_organisation_through_tenant_field():
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    a = MembershipFactory(organization=org_a)
    MembershipFactory(organization=org_b)

    class ByRelation(TenantGenericAPIView):
        queryset = Membership.objects.all()
        tenant_field = "organization__pk"

    view = ByRelation()
    view.organization = org_a.pk  # tenant_field decides how the organisation is matched
    assert list(view.get_queryset()) == [a]
    assert list(ByRelation().get_queryset()) == []  # no organisation resolved: nothing
