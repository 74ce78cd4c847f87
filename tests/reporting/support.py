"""Builders for the reporting tests that need the database: organisations with a member of each
role, stored reports and subscriptions."""

from __future__ import annotations

import hashlib
import uuid

from django.core.files.base import ContentFile

from accounts.models import Membership, Organization, User
from accounts.permissions import Role
from reporting.models import Report, ReportStatus, ReportSubscription
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory


def org_with_roles() -> tuple[Organization, dict[str, User]]:
    org = OrganizationFactory()
    users = {role: MembershipFactory(organization=org, role=role, user=UserFactory()).user
             for role in Role.values}
    return org, users


def stored_report(org: Organization, *, kind: str = "performance", fmt: str = "pdf",
                  requested_by: User | None = None, content: bytes | None = None,
                  title: str | None = None) -> Report:
    content = content if content is not None else b"%PDF-1.4 " + uuid.uuid4().hex.encode()
    report = Report.objects.create(organization=org, kind=kind, format=fmt,
                                   requested_by=requested_by, status=ReportStatus.SUCCEEDED,
                                   title=title or f"report-{uuid.uuid4().hex[:10]}",
                                   sha256=hashlib.sha256(content).hexdigest(),
                                   size=len(content))
    report.file.save(report.filename, ContentFile(content), save=True)
    return report


def subscription(org: Organization, user: User, *, kind: str = "monthly_statement",
                 parameters: dict | None = None) -> ReportSubscription:
    member = Membership.objects.get(organization=org, user=user)
    return ReportSubscription.objects.create(organization=org, member=member, kind=kind,
                                             parameters=parameters or {})
