"""The scheduled report e-mail: an HTML and a plain-text part rendered from templates, the report
attached, and a one-click unsubscribe link (``List-Unsubscribe`` header too)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from reporting.models import Report, ReportSubscription


def subscription_email(*, subscription: ReportSubscription, report: Report, period: str,
                       content: bytes, unsubscribe_url: str) -> EmailMultiAlternatives:
    context = {
        "organization": subscription.organization.name,
        "kind": subscription.get_kind_display(),
        "period": period,
        "report": report,
        "recipient": subscription.member.user,
        "unsubscribe_url": unsubscribe_url,
    }
    subject = f"{context['organization']}: {context['kind']} — {period}"
    text = render_to_string("reporting/email/report.txt", context)
    html = render_to_string("reporting/email/report.html", context)
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL,
        to=[subscription.member.user.email],
        headers={"List-Unsubscribe": f"<{unsubscribe_url}>",
                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
    message.attach_alternative(html, "text/html")
    message.attach(report.filename, content, report.content_type)
    return message
